/*
 * pickupd_parse.c - Pickup file parser (pickupd, unprivileged).
 *
 * Owns: turning the bytes of one Pickup file into an envelope (sender and
 * deduplicated recipients) and the CRLF copy of the message to queue.  The
 * envelope comes from the leading IIS "x-sender:"/"x-receiver:" lines, or
 * else from Sender:/From: and To:/Cc:/Bcc: (RFC 5322 3.4 address lists).
 * Bcc: is removed; Message-ID: and Date: are added when missing.
 *
 * Trust boundary: data[0..len) is whatever a local application wrote into
 * the Pickup directory, so every byte is untrusted.  Nothing here reads past
 * len; a line, a field value, an address and the error text are all bounded;
 * every address handed out passed smtp_mailbox_valid() (RFC 5321 4.1.2).
 * The opts strings come from pickupd itself and are trusted.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "smtp_parse.h"
#include "pickupd_parse.h"

#define HDR_LINE_MAX	998	/* RFC 5322 2.1.1: octets per line, CRLF excluded */
#define ADDR_BUF	512	/* an address as written, before qualification */
#define ERR_SHOW	80	/* at most this much of an address in an error */

/* One line of the header section, without its terminator. */
struct hline {
	size_t		 off;
	size_t		 len;
};

enum fkind {
	F_OTHER = 0, F_XSENDER, F_XRECEIVER, F_SENDER, F_FROM, F_TO, F_CC,
	F_BCC, F_MSGID, F_DATE
};

/* One header field: its first line and continuation lines (RFC 5322 2.2). */
struct hfield {
	size_t		 first;		/* index into lines; line number - 1 */
	size_t		 nlines;
	size_t		 namelen;
	enum fkind	 kind;
	int		 drop;		/* not copied into the content */
};

/*
 * A list of addresses in arrival order.  Duplicates are dropped comparing
 * the whole address with ASCII case folding: local-parts are case-sensitive
 * in theory (RFC 5321 2.4) but no real mailbox depends on that, and sending
 * one copy per case variant is the worse failure.  The hash table keeps
 * this linear for files with many recipients.
 */
struct alist {
	char		**v;
	size_t		  n;
	size_t		  cap;
	size_t		 *tab;		/* open addressing: index + 1, 0 = empty */
	size_t		  tabsz;	/* 0 or a power of two > 2 * n */
};

struct parser {
	const char		*data;
	size_t			 len;
	const struct pickup_opts *opts;
	struct pickup_msg	*msg;
	struct hline		*lines;
	size_t			 nlines;
	size_t			 linescap;
	struct hfield		*fields;
	size_t			 nfields;
	size_t			 fieldscap;
	size_t			 body;		/* offset of the body; len if none */
	char			*sender;
	struct alist		 rcpts;
};

/* An address being assembled from tokens. */
struct abuf {
	char		 s[ADDR_BUF];
	size_t		 len;
	size_t		 ntok;
	int		 overflow;
	int		 has_at;	/* an unquoted '@' was seen */
	int		 lastword;	/* the last token was a word */
	int		 bad;		/* two words without '.' or '@' between */
};

enum tokt { T_END, T_ATOM, T_QSTR, T_DLIT, T_SPECIAL, T_ERR };

struct tok {
	enum tokt	 type;
	const char	*s;
	size_t		 len;
	int		 c;		/* T_SPECIAL: the character */
};

struct lexer {
	const char	*s;
	size_t		 n;
	size_t		 i;
	const char	*why;		/* T_ERR: what is wrong */
};

static int	perr(struct parser *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

/* ---- small helpers ----------------------------------------------------- */

static int
lc(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int
ascii_caseeq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (lc((unsigned char)*a) != lc((unsigned char)*b))
			return 0;
	return *a == *b;
}

static int
is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

/* Set the error (one printable-ASCII line, for the .BDR report); returns -1. */
static int
perr(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (p->msg->error[0] != '\0')
		return -1;		/* keep the first reason */
	va_start(ap, fmt);
	(void)vsnprintf(p->msg->error, sizeof(p->msg->error), fmt, ap);
	va_end(ap);
	for (s = p->msg->error; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
	return -1;
}

static int
nomem(struct parser *p)
{
	return perr(p, "out of memory");
}

/*
 * The line at *pos: sets *off and *ll (its length without the terminator)
 * and moves *pos past LF, CRLF or a bare CR, each one line break.
 * Returns 0 at the end of the data.
 */
static int
next_line(const char *d, size_t len, size_t *pos, size_t *off, size_t *ll)
{
	size_t i = *pos;

	if (i >= len)
		return 0;
	*off = i;
	while (i < len && d[i] != '\n' && d[i] != '\r')
		i++;
	*ll = i - *off;
	if (i < len) {
		if (d[i] == '\r' && i + 1 < len && d[i + 1] == '\n')
			i += 2;
		else
			i++;
	}
	*pos = i;
	return 1;
}

/* ---- address lists ----------------------------------------------------- */

static uint64_t
addr_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (; *s != '\0'; s++) {
		h ^= (uint64_t)lc((unsigned char)*s);
		h *= 1099511628211ULL;
	}
	return h;
}

static int
alist_rehash(struct alist *l, size_t nsz)
{
	size_t *nt, i, j;

	if ((nt = calloc(nsz, sizeof(*nt))) == NULL)
		return -1;
	for (i = 0; i < l->n; i++) {
		j = addr_hash(l->v[i]) & (nsz - 1);
		while (nt[j] != 0)
			j = (j + 1) & (nsz - 1);
		nt[j] = i + 1;
	}
	free(l->tab);
	l->tab = nt;
	l->tabsz = nsz;
	return 0;
}

/* Append a copy of `s` unless an equal address is there; -1 on ENOMEM. */
static int
alist_add(struct alist *l, const char *s)
{
	char **nv;
	size_t j, ncap;

	if (l->tabsz != 0) {
		j = addr_hash(s) & (l->tabsz - 1);
		for (; l->tab[j] != 0; j = (j + 1) & (l->tabsz - 1))
			if (ascii_caseeq(l->v[l->tab[j] - 1], s))
				return 0;
	}
	if (l->n == l->cap) {
		ncap = l->cap ? l->cap * 2 : 8;
		if ((nv = reallocarray(l->v, ncap, sizeof(*nv))) == NULL)
			return -1;
		l->v = nv;
		l->cap = ncap;
	}
	if ((l->n + 1) * 2 > l->tabsz &&
	    alist_rehash(l, l->tabsz ? l->tabsz * 2 : 16) == -1)
		return -1;
	if ((l->v[l->n] = strdup(s)) == NULL)
		return -1;
	j = addr_hash(s) & (l->tabsz - 1);
	while (l->tab[j] != 0)
		j = (j + 1) & (l->tabsz - 1);
	l->tab[j] = ++l->n;
	return 0;
}

static void
alist_free(struct alist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	free(l->tab);
	memset(l, 0, sizeof(*l));
}

/* RFC 5322 3.2.3 specials (and WSP) end an atom; '.' is a token of its own. */
static int
is_special(int c)
{
	return (c != '\0' && strchr("()<>[]:;@\\,.\"", c) != NULL) ||
	    is_wsp(c);
}

/*
 * Next token of an unfolded field value: atoms, quoted-strings and domain
 * literals keep their raw text; comments and WSP (CFWS, RFC 5322 3.2.2)
 * are skipped, nested comments included.
 */
static enum tokt
lex(struct lexer *lx, struct tok *t)
{
	size_t depth, start;
	int c;

	memset(t, 0, sizeof(*t));
	for (;;) {
		while (lx->i < lx->n && is_wsp((unsigned char)lx->s[lx->i]))
			lx->i++;
		if (lx->i >= lx->n)
			return t->type = T_END;
		if (lx->s[lx->i] != '(')
			break;
		for (depth = 1, lx->i++; lx->i < lx->n && depth > 0; ) {
			c = (unsigned char)lx->s[lx->i];
			if (c == '\\') {
				lx->i += 2;
				continue;
			}
			if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			lx->i++;
		}
		if (depth > 0) {
			lx->why = "unterminated comment";
			return t->type = T_ERR;
		}
	}
	start = lx->i;
	c = (unsigned char)lx->s[lx->i];
	t->s = lx->s + start;
	if (c == '"') {
		for (lx->i++; lx->i < lx->n; ) {
			if (lx->s[lx->i] == '\\')
				lx->i += 2;
			else if (lx->s[lx->i] == '"')
				break;
			else
				lx->i++;
		}
		if (lx->i >= lx->n) {
			lx->why = "unterminated quoted string";
			return t->type = T_ERR;
		}
		lx->i++;
		t->type = T_QSTR;
	} else if (c == '[') {
		for (lx->i++; lx->i < lx->n && lx->s[lx->i] != ']'; ) {
			if (lx->s[lx->i] == '[') {
				lx->why = "'[' inside a domain literal";
				return t->type = T_ERR;
			}
			lx->i += lx->s[lx->i] == '\\' ? 2 : 1;
		}
		if (lx->i >= lx->n) {
			lx->why = "unterminated domain literal";
			return t->type = T_ERR;
		}
		lx->i++;
		t->type = T_DLIT;
	} else if (c == ')' || c == ']' || c == '\\') {
		lx->why = c == '\\' ? "backslash outside quotes" :
		    "unbalanced bracket";
		return t->type = T_ERR;
	} else if (is_special(c)) {
		lx->i++;
		t->c = c;
		t->type = T_SPECIAL;
	} else {
		while (lx->i < lx->n && !is_special((unsigned char)lx->s[lx->i]))
			lx->i++;
		t->type = T_ATOM;
	}
	t->len = lx->i - start;
	return t->type;
}

static void
abuf_reset(struct abuf *a)
{
	memset(a, 0, sizeof(*a));
}

static void
abuf_put(struct abuf *a, const char *s, size_t len)
{
	if (len >= sizeof(a->s) - a->len) {
		a->overflow = 1;
		return;
	}
	memcpy(a->s + a->len, s, len);
	a->len += len;
	a->s[a->len] = '\0';
}

/* Add a token of an addr-spec (RFC 5322 3.4.1, obs-local-part included). */
static void
abuf_tok(struct abuf *a, const struct tok *t)
{
	int word = t->type != T_SPECIAL;

	if (word && a->lastword) {
		a->bad = 1;		/* "John Doe": a phrase, not an address */
		abuf_put(a, " ", 1);
	}
	a->lastword = word;
	if (t->type == T_SPECIAL && t->c == '@')
		a->has_at = 1;
	abuf_put(a, t->s, t->len);
	a->ntok++;
}

/*
 * Qualify (append "@default_domain" to a local-part alone), validate with
 * smtp_mailbox_valid() (RFC 5321 4.1.2 Mailbox) and add to `out`.
 */
static int
addr_emit(struct parser *p, const char *addr, int has_at, size_t lineno,
    const char *hname, struct alist *out)
{
	const char *dom = p->opts->default_domain;
	char q[ADDR_BUF + SMTP_DOMAIN_MAX + 2];
	int n;

	if (has_at || dom == NULL || *dom == '\0')
		n = snprintf(q, sizeof(q), "%s", addr);
	else
		n = snprintf(q, sizeof(q), "%s@%s", addr, dom);
	if (n < 0 || (size_t)n >= sizeof(q) || strlen(q) > SMTP_PATH_MAX - 2)
		return perr(p, "line %zu: address too long in %s:", lineno,
		    hname);
	if (!smtp_mailbox_valid(q, 0))
		return perr(p, "line %zu: invalid address '%.*s' in %s:",
		    lineno, ERR_SHOW, addr, hname);
	if (alist_add(out, q) == -1)
		return nomem(p);
	return 0;
}

/* Emit the address of one list element, if it has one. */
static int
element_emit(struct parser *p, struct abuf *a, size_t lineno,
    const char *hname, struct alist *out)
{
	if (a->overflow)
		return perr(p, "line %zu: address too long in %s:", lineno,
		    hname);
	if (a->bad)
		return perr(p, "line %zu: invalid address '%.*s' in %s:",
		    lineno, ERR_SHOW, a->s, hname);
	return addr_emit(p, a->s, a->has_at, lineno, hname, out);
}

/*
 * The addr-spec of an angle-addr, after its '<' (RFC 5322 3.4), dropping an
 * obsolete source route "@a,@b:" (RFC 5322 4.4).  Returns 0 or -1 with
 * lx->why set.
 */
static int
parse_angle(struct lexer *lx, struct abuf *a)
{
	struct tok t;

	abuf_reset(a);
	lex(lx, &t);
	if (t.type == T_SPECIAL && t.c == '@') {
		for (;;) {
			lex(lx, &t);
			if (t.type == T_ERR)
				return -1;
			if (t.type == T_END || (t.type == T_SPECIAL &&
			    strchr("<>;", t.c) != NULL)) {
				lx->why = "malformed source route";
				return -1;
			}
			if (t.type == T_SPECIAL && t.c == ':')
				break;
		}
		lex(lx, &t);
	}
	for (;; lex(lx, &t)) {
		switch (t.type) {
		case T_ERR:
			return -1;
		case T_END:
			lx->why = "unterminated '<'";
			return -1;
		case T_SPECIAL:
			if (t.c == '>')
				return 0;
			if (t.c != '.' && t.c != '@') {
				lx->why = "unexpected character inside <...>";
				return -1;
			}
			break;
		default:
			break;
		}
		abuf_tok(a, &t);
	}
}

/* The unfolded value of a field (RFC 5322 2.2.3), NUL-terminated. */
static char *
field_value(struct parser *p, const struct hfield *f, size_t *vlen)
{
	const struct hline *l;
	size_t i, n, skip;
	char *v;

	for (n = 0, i = 0; i < f->nlines; i++)
		n += p->lines[f->first + i].len;
	n -= f->namelen + 1;
	if ((v = malloc(n + 1)) == NULL)
		return NULL;
	for (n = 0, i = 0; i < f->nlines; i++) {
		l = &p->lines[f->first + i];
		skip = i == 0 ? f->namelen + 1 : 0;
		memcpy(v + n, p->data + l->off + skip, l->len - skip);
		n += l->len - skip;
	}
	v[n] = '\0';
	*vlen = n;
	return v;
}

/*
 * Parse a field's address-list / mailbox-list (RFC 5322 3.4): display
 * names, quoted strings, comments, angle-addrs and groups, including empty
 * ones ("undisclosed-recipients:;") and empty list elements (obs-addr-list,
 * RFC 5322 4.4).  Every mailbox goes to `out`.
 */
static int
parse_addrlist(struct parser *p, const struct hfield *f, const char *hname,
    struct alist *out)
{
	struct lexer lx;
	struct tok t;
	struct abuf cur, angle;
	size_t lineno = f->first + 1, vlen;
	char *v;
	int in_group = 0, have_angle = 0, closed = 0, rc = -1;

	if ((v = field_value(p, f, &vlen)) == NULL)
		return nomem(p);
	memset(&lx, 0, sizeof(lx));
	lx.s = v;
	lx.n = vlen;
	abuf_reset(&cur);
	for (;;) {
		if (lex(&lx, &t) == T_ERR)
			goto malformed;
		if (t.type == T_END || (t.type == T_SPECIAL &&
		    (t.c == ',' || t.c == ';'))) {
			if (t.type == T_SPECIAL && t.c == ';' && !in_group) {
				lx.why = "';' outside a group";
				goto malformed;
			}
			if (have_angle) {
				if (element_emit(p, &angle, lineno, hname,
				    out) == -1)
					goto out;
			} else if (cur.ntok > 0) {
				if (element_emit(p, &cur, lineno, hname,
				    out) == -1)
					goto out;
			}
			if (t.type == T_END)
				break;
			abuf_reset(&cur);
			have_angle = 0;
			closed = t.c == ';';
			if (t.c == ';')
				in_group = 0;
			continue;
		}
		if (closed) {
			lx.why = "text after the end of an address";
			goto malformed;
		}
		if (t.type != T_SPECIAL || t.c == '.' || t.c == '@') {
			abuf_tok(&cur, &t);
			continue;
		}
		switch (t.c) {
		case '<':
			if (parse_angle(&lx, &angle) == -1)
				goto malformed;
			have_angle = closed = 1;
			break;
		case ':':
			if (in_group) {
				lx.why = "group inside a group";
				goto malformed;
			}
			in_group = 1;		/* the display name is dropped */
			abuf_reset(&cur);
			break;
		default:
			lx.why = "unexpected '>'";
			goto malformed;
		}
	}
	rc = 0;
	goto out;
 malformed:
	perr(p, "line %zu: malformed address list in %s: (%s)", lineno, hname,
	    lx.why);
 out:
	free(v);
	return rc;
}

/* Does `s` have an '@' outside a quoted local-part? */
static int
has_unquoted_at(const char *s)
{
	int inq = 0;

	for (; *s != '\0'; s++) {
		if (inq && *s == '\\' && s[1] != '\0')
			s++;
		else if (*s == '"')
			inq = !inq;
		else if (*s == '@' && !inq)
			return 1;
	}
	return 0;
}

/*
 * The value of an IIS "x-sender:" or "x-receiver:" line: one address,
 * "<a@b>" or "a@b"; "<>" is the null sender when `allow_null`.
 */
static int
parse_iis(struct parser *p, const struct hfield *f, const char *hname,
    int allow_null, struct alist *out)
{
	size_t lineno = f->first + 1, vlen, s, e;
	char *v;
	int rc;

	if ((v = field_value(p, f, &vlen)) == NULL)
		return nomem(p);
	for (s = 0; s < vlen && is_wsp((unsigned char)v[s]); s++)
		;
	for (e = vlen; e > s && is_wsp((unsigned char)v[e - 1]); e--)
		;
	if (e - s >= 2 && v[s] == '<' && v[e - 1] == '>') {
		s++;
		e--;
		if (s == e && allow_null) {
			free(v);
			if ((p->sender = strdup("")) == NULL)
				return nomem(p);
			return 0;
		}
	}
	v[e] = '\0';
	if (e - s >= ADDR_BUF)
		rc = perr(p, "line %zu: address too long in %s:", lineno,
		    hname);
	else
		rc = addr_emit(p, v + s, has_unquoted_at(v + s), lineno,
		    hname, out);
	free(v);
	return rc;
}

/* ---- the header section ------------------------------------------------ */

static enum fkind
field_kind(const char *name, size_t len)
{
	static const struct {
		const char	*name;
		enum fkind	 kind;
	} tab[] = {
		{ "x-sender", F_XSENDER }, { "x-receiver", F_XRECEIVER },
		{ "sender", F_SENDER }, { "from", F_FROM }, { "to", F_TO },
		{ "cc", F_CC }, { "bcc", F_BCC }, { "message-id", F_MSGID },
		{ "date", F_DATE }
	};
	size_t i, j;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		if (strlen(tab[i].name) != len)
			continue;
		for (j = 0; j < len; j++)
			if (lc((unsigned char)name[j]) != tab[i].name[j])
				break;
		if (j == len)
			return tab[i].kind;
	}
	return F_OTHER;
}

static int
add_line(struct parser *p, size_t off, size_t len)
{
	struct hline *nl;
	size_t ncap;

	if (p->nlines == p->linescap) {
		ncap = p->linescap ? p->linescap * 2 : 32;
		if ((nl = reallocarray(p->lines, ncap, sizeof(*nl))) == NULL)
			return nomem(p);
		p->lines = nl;
		p->linescap = ncap;
	}
	p->lines[p->nlines].off = off;
	p->lines[p->nlines].len = len;
	p->nlines++;
	return 0;
}

static int
add_field(struct parser *p, size_t namelen)
{
	struct hfield *nf;
	size_t ncap;

	if (p->nfields == p->fieldscap) {
		ncap = p->fieldscap ? p->fieldscap * 2 : 16;
		if ((nf = reallocarray(p->fields, ncap, sizeof(*nf))) == NULL)
			return nomem(p);
		p->fields = nf;
		p->fieldscap = ncap;
	}
	memset(&p->fields[p->nfields], 0, sizeof(p->fields[0]));
	p->fields[p->nfields].first = p->nlines - 1;
	p->fields[p->nfields].nlines = 1;
	p->fields[p->nfields].namelen = namelen;
	p->fields[p->nfields].kind = field_kind(p->data +
	    p->lines[p->nlines - 1].off, namelen);
	p->nfields++;
	return 0;
}

/*
 * Split the header section into fields (RFC 5322 2.2: field-name ":"
 * value, continuation lines start with WSP; 2.1.1: at most 998 octets a
 * line).  It ends at the first empty line, or at the end of the file (the
 * body is then empty).
 */
static int
parse_header(struct parser *p)
{
	const char *l;
	size_t pos = 0, off, ll, lineno = 0, i;
	const char *colon;

	while (next_line(p->data, p->len, &pos, &off, &ll)) {
		lineno++;
		l = p->data + off;
		if (ll == 0) {
			p->body = pos;
			return 0;
		}
		if (ll > HDR_LINE_MAX)
			return perr(p, "line %zu: header line longer than %d "
			    "octets", lineno, HDR_LINE_MAX);
		if (is_wsp((unsigned char)l[0])) {
			if (p->nfields == 0)
				return perr(p, "line %zu: continuation line "
				    "without a header field before it", lineno);
			for (i = 0; i < ll && is_wsp((unsigned char)l[i]); i++)
				;
			/* Readers disagree on whether it ends the header. */
			if (i == ll)
				return perr(p, "line %zu: header line of only "
				    "white space", lineno);
			if (add_line(p, off, ll) == -1)
				return -1;
			p->fields[p->nfields - 1].nlines++;
			continue;
		}
		if ((colon = memchr(l, ':', ll)) == NULL)
			return perr(p, "line %zu: header line without a colon",
			    lineno);
		if (colon == l)
			return perr(p, "line %zu: empty header field name",
			    lineno);
		for (i = 0; l + i < colon; i++)
			if ((unsigned char)l[i] < 33 ||
			    (unsigned char)l[i] > 126)
				return perr(p, "line %zu: invalid character in "
				    "header field name", lineno);
		if (add_line(p, off, ll) == -1 ||
		    add_field(p, (size_t)(colon - l)) == -1)
			return -1;
	}
	p->body = p->len;
	return 0;
}

/* ---- the envelope ------------------------------------------------------ */

/*
 * IIS style: the fields before the first other one are x-sender: (exactly
 * one) and x-receiver: (one or more), in any order.  They are the envelope
 * and are not copied.  Later x-sender:/x-receiver: fields are ordinary
 * header fields, as in IIS.
 */
static int
envelope_iis(struct parser *p, size_t nlead)
{
	struct alist tmp;
	struct hfield *f;
	size_t i, nsender = 0, nrcv = 0;

	for (i = 0; i < nlead; i++) {
		f = &p->fields[i];
		f->drop = 1;
		if (f->kind == F_XSENDER) {
			if (nsender++ > 0)
				return perr(p, "line %zu: more than one "
				    "x-sender: line", f->first + 1);
			memset(&tmp, 0, sizeof(tmp));
			if (parse_iis(p, f, "x-sender", 1, &tmp) == -1) {
				alist_free(&tmp);
				return -1;
			}
			if (p->sender == NULL) {
				/* parse_iis() succeeded: p->sender set, or one address in tmp */
				p->sender = tmp.v[0];	/* steal it NOLINT(clang-analyzer-core.NullDereference) */
				tmp.v[0] = NULL;
			}
			alist_free(&tmp);
		} else {
			nrcv++;
			if (parse_iis(p, f, "x-receiver", 0, &p->rcpts) == -1)
				return -1;
		}
	}
	if (nsender == 0)
		return perr(p, "x-receiver: line without an x-sender: line");
	if (nrcv == 0)
		return perr(p, "x-sender: line without an x-receiver: line");
	return 0;
}

/*
 * Header style: the sender is the first mailbox of the first Sender:, else
 * of the first From: (RFC 5322 3.6.2); the recipients are every mailbox of
 * every To:, Cc: and Bcc: (3.6.3).
 */
static int
envelope_headers(struct parser *p)
{
	static const char *names[] = {
		[F_SENDER] = "Sender", [F_FROM] = "From", [F_TO] = "To",
		[F_CC] = "Cc", [F_BCC] = "Bcc"
	};
	struct alist tmp;
	struct hfield *f, *sf = NULL, *ff = NULL;
	size_t i;

	for (i = 0; i < p->nfields; i++) {
		f = &p->fields[i];
		if (f->kind == F_SENDER && sf == NULL)
			sf = f;
		else if (f->kind == F_FROM && ff == NULL)
			ff = f;
	}
	if (sf == NULL)
		sf = ff;
	if (sf == NULL)
		return perr(p, "no sender: neither x-sender, Sender nor From");
	memset(&tmp, 0, sizeof(tmp));
	if (parse_addrlist(p, sf, names[sf->kind], &tmp) == -1) {
		alist_free(&tmp);
		return -1;
	}
	if (tmp.n == 0) {
		alist_free(&tmp);
		return perr(p, "line %zu: no address in %s:", sf->first + 1,
		    names[sf->kind]);
	}
	p->sender = tmp.v[0];		/* steal it; free(NULL) is fine */
	tmp.v[0] = NULL;
	alist_free(&tmp);

	for (i = 0; i < p->nfields; i++) {
		f = &p->fields[i];
		if (f->kind != F_TO && f->kind != F_CC && f->kind != F_BCC)
			continue;
		if (parse_addrlist(p, f, names[f->kind], &p->rcpts) == -1)
			return -1;
	}
	return 0;
}

static int
envelope(struct parser *p)
{
	size_t i;

	for (i = 0; i < p->nfields; i++)
		if (p->fields[i].kind != F_XSENDER &&
		    p->fields[i].kind != F_XRECEIVER)
			break;
	if (i > 0) {
		if (envelope_iis(p, i) == -1)
			return -1;
	} else if (envelope_headers(p) == -1)
		return -1;
	for (i = 0; i < p->nfields; i++)
		if (p->fields[i].kind == F_BCC)
			p->fields[i].drop = 1;
	return 0;
}

/* ---- the content ------------------------------------------------------- */

static int
add_header(struct parser *p, struct evbuffer *b, const char *name,
    const char *value)
{
	if (value == NULL || *value == '\0')
		return 0;
	if (strpbrk(value, "\r\n") != NULL)
		return perr(p, "invalid %s option", name);
	if (evbuffer_add_printf(b, "%s: %s\r\n", name, value) == -1)
		return nomem(p);
	return 0;
}

/*
 * The kept header lines, the added Message-ID:/Date: (at the end of the
 * header section, RFC 5322 3.6.4 and 3.6.1), the empty line and the body,
 * every line ending in CRLF (RFC 5322 2.1), the last one included.
 */
static int
build_content(struct parser *p)
{
	struct evbuffer *b;
	const struct hfield *f;
	const struct hline *l;
	size_t i, j, pos, off, ll;
	int has_msgid = 0, has_date = 0;

	if ((b = evbuffer_new()) == NULL)
		return nomem(p);
	p->msg->content = b;
	for (i = 0; i < p->nfields; i++) {
		f = &p->fields[i];
		if (f->drop)
			continue;
		if (f->kind == F_MSGID)
			has_msgid = 1;
		else if (f->kind == F_DATE)
			has_date = 1;
		for (j = 0; j < f->nlines; j++) {
			l = &p->lines[f->first + j];
			if (evbuffer_add(b, p->data + l->off, l->len) == -1 ||
			    evbuffer_add(b, "\r\n", 2) == -1)
				return nomem(p);
		}
	}
	if ((!has_msgid &&
	    add_header(p, b, "Message-ID", p->opts->message_id) == -1) ||
	    (!has_date && add_header(p, b, "Date", p->opts->date) == -1))
		return -1;
	if (evbuffer_add(b, "\r\n", 2) == -1)
		return nomem(p);
	pos = p->body;
	while (next_line(p->data, p->len, &pos, &off, &ll))
		if (evbuffer_add(b, p->data + off, ll) == -1 ||
		    evbuffer_add(b, "\r\n", 2) == -1)
			return nomem(p);
	return 0;
}

/* ---- entry points ------------------------------------------------------ */

/* Parse one Pickup file into its envelope and CRLF content. */
int
pickup_parse(const char *data, size_t len, const struct pickup_opts *opts,
    struct pickup_msg *msg)
{
	static const struct pickup_opts noopts;
	struct parser p;
	const char *nul;
	int rc = -1;

	memset(msg, 0, sizeof(*msg));
	memset(&p, 0, sizeof(p));
	p.data = data;
	p.len = len;
	p.opts = opts != NULL ? opts : &noopts;
	p.msg = msg;

	if (len == 0 || data == NULL) {
		perr(&p, "empty file");
		goto done;
	}
	/* RFC 5322 2.1 / RFC 5321 4.1.1.4: no NUL anywhere in a message. */
	if ((nul = memchr(data, '\0', len)) != NULL) {
		perr(&p, "NUL byte at offset %zu", (size_t)(nul - data));
		goto done;
	}
	if (parse_header(&p) == -1 || envelope(&p) == -1)
		goto done;
	if (p.sender == NULL) {
		perr(&p, "no sender: neither x-sender, Sender nor From");
		goto done;
	}
	if (p.rcpts.n == 0) {
		perr(&p, "no recipients");
		goto done;
	}
	if (p.opts->max_rcpts != 0 && p.rcpts.n > p.opts->max_rcpts) {
		perr(&p, "too many recipients (%zu, limit %zu)", p.rcpts.n,
		    p.opts->max_rcpts);
		goto done;
	}
	if (build_content(&p) == -1)
		goto done;

	msg->sender = p.sender;
	p.sender = NULL;
	msg->rcpts = p.rcpts.v;
	msg->nrcpts = p.rcpts.n;
	p.rcpts.v = NULL;
	p.rcpts.n = 0;
	rc = 0;
 done:
	if (rc == -1) {
		if (msg->error[0] == '\0')
			perr(&p, "invalid message");
		pickup_msg_free(msg);
	}
	free(p.sender);
	alist_free(&p.rcpts);
	free(p.lines);
	free(p.fields);
	return rc;
}

/* Free what pickup_parse() filled; safe on a zeroed struct and twice. */
void
pickup_msg_free(struct pickup_msg *msg)
{
	size_t i;

	if (msg == NULL)
		return;
	free(msg->sender);
	msg->sender = NULL;
	if (msg->rcpts != NULL) {
		for (i = 0; i < msg->nrcpts; i++)
			free(msg->rcpts[i]);
		free(msg->rcpts);
	}
	msg->rcpts = NULL;
	msg->nrcpts = 0;
	if (msg->content != NULL)
		evbuffer_free(msg->content);
	msg->content = NULL;
}

/*
 * mailroot.c - creating and checking the Mailroot (mail layer).
 * Runs in mailrootd as root (or as the invoking user in development), before
 * any daemon starts.  It refuses a Mailroot reached through a symbolic link
 * or owned by an unexpected user, since every daemon trusts these folders.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "mailroot.h"

int
mailroot_path(const struct config *c, const char *sub, char *buf, size_t bufsz)
{
	int n = snprintf(buf, bufsz, "%s/%s", c->mailroot, sub);

	return (n < 0 || (size_t)n >= bufsz) ? -1 : 0;
}

static int
lookup_user(const char *name, uid_t *uid, gid_t *gid, char *missing, size_t msz)
{
	struct passwd *pw = getpwnam(name);

	if (pw == NULL) {
		if (missing[0])
			strlcat(missing, ", ", msz);
		strlcat(missing, "user ", msz);
		strlcat(missing, name, msz);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

int
mailroot_ids(const struct config *c, struct mailroot_ids *ids, char *err, size_t errsz)
{
	char missing[256] = "";
	struct group *gr;
	int bad = 0;

	memset(ids, 0, sizeof(*ids));
	if (geteuid() != 0) {
		ids->smtpd_uid = ids->queued_uid = ids->pickupd_uid = geteuid();
		ids->smtpd_gid = ids->queued_gid = ids->pickupd_gid = getegid();
		ids->group_gid = getegid();
		return 0;
	}
	ids->privileged = 1;
	bad |= lookup_user(c->smtpd_user, &ids->smtpd_uid, &ids->smtpd_gid, missing, sizeof(missing));
	bad |= lookup_user(c->queued_user, &ids->queued_uid, &ids->queued_gid, missing, sizeof(missing));
	bad |= lookup_user(c->pickupd_user, &ids->pickupd_uid, &ids->pickupd_gid, missing, sizeof(missing));
	if ((gr = getgrnam(c->mailroot_group)) == NULL) {
		if (missing[0])
			strlcat(missing, ", ", sizeof(missing));
		strlcat(missing, "group ", sizeof(missing));
		strlcat(missing, c->mailroot_group, sizeof(missing));
		bad = -1;
	} else
		ids->group_gid = gr->gr_gid;
	if (bad) {
		snprintf(err, errsz, "missing %s; create them with \"make install-users\" "
		    "or install the Debian package (see mailroot(7))", missing);
		return -1;
	}
	if (ids->smtpd_uid == 0 || ids->queued_uid == 0 || ids->pickupd_uid == 0) {
		snprintf(err, errsz, "a daemon user must not be root (uid 0)");
		return -1;
	}
	return 0;
}

/*
 * Make `path` a directory with this owner and mode: create it, or fix an
 * existing one.  Never follows a symbolic link.
 */
static int
ensure_dir(const char *path, uid_t uid, gid_t gid, mode_t mode, int privileged,
    char *err, size_t errsz)
{
	struct stat st;
	int fd;

	if (mkdir(path, mode & 0777) == -1 && errno != EEXIST) {
		snprintf(err, errsz, "mkdir %s: %s", path, strerror(errno));
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		snprintf(err, errsz, "%s: %s%s", path, strerror(errno),
		    errno == ELOOP || errno == ENOTDIR ? " (not a directory, or a symbolic link)" : "");
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errsz, "stat %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (privileged) {
		if ((st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) == -1) {
			snprintf(err, errsz, "chown %s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
	} else if (st.st_uid != geteuid()) {
		snprintf(err, errsz, "%s is owned by uid %u, not by the user running "
		    "Mailroot (uid %u)", path, (unsigned)st.st_uid, (unsigned)geteuid());
		close(fd);
		return -1;
	}
	if ((st.st_mode & 07777) != mode) {
		/* A set-group-ID bit can be dropped silently: look again. */
		if (fchmod(fd, mode) == -1 || fstat(fd, &st) == -1) {
			snprintf(err, errsz, "chmod %s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		if ((st.st_mode & 07777) != mode) {
			snprintf(err, errsz, "chmod %s: the mode is %04o, not %04o (a file "
			    "system or sandbox that drops set-group-ID bits?)", path,
			    (unsigned)(st.st_mode & 07777), (unsigned)mode);
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 0;
}

int
mailroot_setup(const struct config *c, const struct mailroot_ids *ids, char *err,
    size_t errsz)
{
	const struct {
		const char	*sub;
		int		 owner;		/* 0 root, 1 queued, 2 pickupd */
		int		 group;		/* 0 owner's, 1 the mailroot group */
		mode_t		 mode;
	} dirs[] = {
		{ "",		0, 0, 0755 },
		{ MR_RUN,	0, 0, 0755 },
		{ MR_EMPTY,	0, 0, 0555 },
		/* applications in the group submit; sticky: none removes another's file */
		{ MR_PICKUP,	2, 1, 03770 },
		{ MR_QUEUE,	1, 0, 0700 },
		{ MR_QUEUE_TMP,	1, 0, 0700 },
		/* consumers in the group read and remove dropped messages */
		{ MR_DROP,	1, 1, 02770 },
		{ MR_BADMAIL,	1, 1, 02750 },
	};
	char path[PATH_MAX];
	uid_t uid;
	gid_t gid;
	size_t i;

	if (c->mailroot[0] != '/') {
		snprintf(err, errsz, "mailroot must be an absolute path");
		return -1;
	}
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (dirs[i].sub[0] == '\0')
			strlcpy(path, c->mailroot, sizeof(path));
		else if (mailroot_path(c, dirs[i].sub, path, sizeof(path)) == -1) {
			snprintf(err, errsz, "mailroot path too long");
			return -1;
		}
		switch (dirs[i].owner) {
		case 1: uid = ids->queued_uid; gid = ids->queued_gid; break;
		case 2: uid = ids->pickupd_uid; gid = ids->pickupd_gid; break;
		default: uid = 0; gid = 0; break;
		}
		if (dirs[i].group)
			gid = ids->group_gid;
		if (ensure_dir(path, uid, gid, dirs[i].mode, ids->privileged, err, errsz) == -1)
			return -1;
	}
	return 0;
}

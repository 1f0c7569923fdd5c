/*
 * mailroot.h - the Mailroot folder layout, its owners and modes (mail layer).
 */
#ifndef MR_MAILROOT_H
#define MR_MAILROOT_H

#include <stddef.h>
#include <sys/types.h>

struct config;

#define MR_PICKUP	"Pickup"
#define MR_QUEUE	"Queue"
#define MR_QUEUE_TMP	"Queue/tmp"
#define MR_DROP		"Drop"
#define MR_BADMAIL	"Badmail"
#define MR_RUN		"run"		/* pidfile and control socket */
#define MR_EMPTY	"empty"		/* smtpd's chroot: an empty, root-owned dir */

/* The system users and group of privilege separation, resolved. */
struct mailroot_ids {
	int	privileged;		/* running as root: owners are enforced */
	uid_t	smtpd_uid, queued_uid, pickupd_uid;
	gid_t	smtpd_gid, queued_gid, pickupd_gid;
	gid_t	group_gid;		/* the mailroot group: Drop readers, Pickup writers */
};

/*
 * Resolve the users and group named in the config.  As root, each must exist;
 * otherwise `err` names what is missing and how to create it, and -1 is
 * returned.  As another user every id is that user's own.
 */
int	mailroot_ids(const struct config *, struct mailroot_ids *, char *err, size_t errsz);

/*
 * Create the Mailroot and its folders if missing, and give each the owner
 * and mode of the privilege model (see mailroot(7)).  -1 with `err` set.
 */
int	mailroot_setup(const struct config *, const struct mailroot_ids *,
	    char *err, size_t errsz);

/* Write "<mailroot>/<sub>" into buf; -1 if it does not fit. */
int	mailroot_path(const struct config *, const char *sub, char *buf, size_t bufsz);

#endif

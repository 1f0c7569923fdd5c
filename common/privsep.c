/*
 * privsep.c - dropping root in a daemon (generic layer).
 * Runs first thing in smtpd, queued and pickupd, before any input is read.
 */
#include <sys/types.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include "log.h"
#include "privsep.h"

void
privsep_drop(const char *user, const char *extra_group, const char *root)
{
	struct passwd *pw;
	struct group *gr;
	gid_t groups[2];
	int ngroups = 1;

	if (geteuid() != 0) {
		log_debug("not root: running as uid %u without changing user",
		    (unsigned)geteuid());
		return;
	}
	if (user == NULL)
		fatalx("started as root without a user to run as: refusing");
	if ((pw = getpwnam(user)) == NULL)
		fatalx("unknown user %s", user);
	if (pw->pw_uid == 0)
		fatalx("user %s is root: refusing", user);
	groups[0] = pw->pw_gid;
	if (extra_group != NULL) {
		if ((gr = getgrnam(extra_group)) == NULL)
			fatalx("unknown group %s", extra_group);
		groups[ngroups++] = gr->gr_gid;
	}
	if (root != NULL) {
		if (chroot(root) == -1)
			fatal("chroot %s", root);
		if (chdir("/") == -1)
			fatal("chdir /");
	}
	if (setgroups(ngroups, groups) == -1)
		fatal("setgroups");
	if (setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1)
		fatal("setresgid");
	if (setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("setresuid");
	if (setuid(0) != -1 || seteuid(0) != -1)
		fatalx("could regain root after dropping it");
	log_debug("running as %s (uid %u)%s%s", user, (unsigned)pw->pw_uid,
	    root ? " in chroot " : "", root ? root : "");
}

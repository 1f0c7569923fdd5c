/*
 * privsep.h - dropping privileges (generic layer).
 */
#ifndef MR_PRIVSEP_H
#define MR_PRIVSEP_H

/*
 * Become `user` with its groups plus `extra_group` (NULL: none), after
 * chroot(2) into `root` (NULL: none).  Does nothing when not started as root.
 * Exits through fatal() if any step fails or root could be regained.
 */
void	privsep_drop(const char *user, const char *extra_group, const char *root);

#endif

/* privs.c — see privs.h. */
#include "common/privs.h"
#include "common/log.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

int privs_drop(const char *user, const char *config_path)
{
	if (geteuid() != 0)
		return 0;
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		log_error("user \"%s\" does not exist: create it (useradd --system %s) "
			  "or set \"user\" in %s", user, user, config_path);
		return -1;
	}
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		log_error("cannot switch to user %s: %s", user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		log_error("could switch back to root after dropping privileges; stopping");
		return -1;
	}
	log_debug("running as user %s (uid %u)", user, (unsigned)pw->pw_uid);
	return 0;
}

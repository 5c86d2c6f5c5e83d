/* privs.h — dropping root for good (every daemon after it has bound its sockets and
 * read its keys). */
#ifndef WARREN_PRIVS_H
#define WARREN_PRIVS_H

/* When running as root: switch to user (its group, no supplementary groups) and
 * check that root cannot be regained. Not root: nothing to do. Returns -1 with a
 * log line on failure; config_path is named in the hint for a missing user. */
int privs_drop(const char *user, const char *config_path);

#endif

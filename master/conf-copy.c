/* conf-copy.c — the master keeps a copy of the configuration it runs.
 *
 * Every configuration the master accepts (at start and on each good reload) is
 * copied to state_dir/config/gGENERATION/ (each file under its absolute path),
 * and state_dir/config/current is switched to it with one rename. The daemons
 * read their configuration through that link (SERVICE_CONF_ROOT_ENV), so a daemon
 * started after the admin saved a broken file runs what the master runs. The
 * previous copy stays for daemons still reading it during a reload; older ones
 * are removed.
 */
#include "master/master.h"
#include "common/log.h"
#include "service/service.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* dst (PATH_MAX bytes) = dir/name; -1 when it does not fit. */
static int path_join(char *dst, const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	if (a + 1 + b + 1 > PATH_MAX)
		return -1;
	memcpy(dst, dir, a);
	dst[a] = '/';
	memcpy(dst + a + 1, name, b + 1);
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes every gN folder but the ones of keep and keep_prev. */
static void remove_old_copies(const char *base, unsigned long keep, unsigned long keep_prev)
{
	DIR *d = opendir(base);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char *end;
		if (e->d_name[0] != 'g')
			continue;
		unsigned long gen = strtoul(e->d_name + 1, &end, 10);
		if (*end != '\0' || gen == keep || gen == keep_prev)
			continue;
		char path[PATH_MAX];
		if (path_join(path, base, e->d_name) < 0)
			continue;
		nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
	closedir(d);
}

int master_conf_save(struct master *m)
{
	const struct warren_config *conf = m->conf;
	int uid = -1, gid = -1;
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam(conf->user);
		if (pw != NULL) {
			uid = (int)pw->pw_uid;
			gid = (int)pw->pw_gid;
		}
	}
	char base[PATH_MAX], dir[PATH_MAX], link_tmp[PATH_MAX], link[PATH_MAX], target[64];
	snprintf(target, sizeof(target), "g%lu", conf->generation);
	if (path_join(base, conf->state_dir, "config") < 0 || path_join(dir, base, target) < 0 ||
	    path_join(link, base, "current") < 0 || path_join(link_tmp, base, "current.tmp") < 0) {
		log_error("state_dir %s: name too long", conf->state_dir);
		return -1;
	}
	if (mkdir(base, 0750) < 0 && errno != EEXIST) {
		log_error("cannot create %s: %s", base, strerror(errno));
		return -1;
	}
	if (uid != -1 && chown(base, (uid_t)uid, (gid_t)gid) < 0)
		log_warn("cannot give %s to user %s: %s", base, conf->user, strerror(errno));
	/* a copy of this generation left by an earlier master goes first */
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	const char *err = "";
	if (conf_save_copy(conf, dir, uid, gid, &err) < 0) {
		log_error("cannot save a copy of the configuration in %s: %s", dir, err);
		return -1;
	}
	unlink(link_tmp);
	if (symlink(target, link_tmp) < 0 || rename(link_tmp, link) < 0) {
		log_error("cannot switch %s to %s: %s", link, target, strerror(errno));
		return -1;
	}
	remove_old_copies(base, conf->generation, m->conf_copy_prev);
	m->conf_copy_prev = conf->generation;
	if (setenv(SERVICE_CONF_ROOT_ENV, link, 1) < 0)
		return -1;
	return 0;
}

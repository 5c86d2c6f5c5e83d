/* conf-copy.c — a copy of the files a snapshot was read from.
 *
 * The master saves the files of every configuration it accepted under
 * state_dir, and the daemons read that copy (conf_load_from). So a daemon that
 * starts after the admin saved a broken file — restarted after a crash, or after
 * the store's recovery — runs the configuration the master runs, not the broken
 * one, and a reload takes effect in the daemons only once the master accepted it.
 */
#include "conf/conf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates every folder of path below root (path's last component excluded). */
static int make_parents(const char *full, size_t root_len, int uid, int gid)
{
	char dir[PATH_MAX];
	size_t len = strlen(full);
	if (len >= sizeof(dir))
		return -1;
	memcpy(dir, full, len + 1);
	for (size_t i = root_len + 1; i < len; i++) {
		if (dir[i] != '/')
			continue;
		dir[i] = '\0';
		if (mkdir(dir, 0750) == 0) {
			if (uid != -1 && chown(dir, (uid_t)uid, (gid_t)gid) < 0)
				return -1;
		} else if (errno != EEXIST) {
			return -1;
		}
		dir[i] = '/';
	}
	return 0;
}

static int copy_file(const char *from, const char *to, int uid, int gid)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", to) >= (int)sizeof(tmp))
		return -1;
	int in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (out < 0) {
		close(in);
		return -1;
	}
	char chunk[16384];
	ssize_t n;
	int ret = 0;
	while ((n = read(in, chunk, sizeof(chunk))) > 0) {
		if (write(out, chunk, (size_t)n) != n) {
			ret = -1;
			break;
		}
	}
	if (n < 0)
		ret = -1;
	if (ret == 0 && uid != -1 && fchown(out, (uid_t)uid, (gid_t)gid) < 0)
		ret = -1;
	if (close(out) < 0)
		ret = -1;
	close(in);
	if (ret == 0 && rename(tmp, to) < 0)
		ret = -1;
	if (ret < 0)
		unlink(tmp);
	return ret;
}

int conf_save_copy(const struct warren_config *conf, const char *root, int uid, int gid,
		   const char **error_r)
{
	size_t root_len = strlen(root);
	if (mkdir(root, 0750) < 0 && errno != EEXIST) {
		*error_r = strerror(errno);
		return -1;
	}
	if (uid != -1 && chown(root, (uid_t)uid, (gid_t)gid) < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	for (size_t i = 0; i < conf->n_files; i++) {
		char full[PATH_MAX];
		if (snprintf(full, sizeof(full), "%s%s", root, conf->files[i]) >= (int)sizeof(full)) {
			*error_r = "file name too long";
			return -1;
		}
		if (make_parents(full, root_len, uid, gid) < 0 ||
		    copy_file(conf->files[i], full, uid, gid) < 0) {
			*error_r = strerror(errno);
			return -1;
		}
	}
	return 0;
}

/* warrenctl-out.c — output helpers and store access for the admin commands. */
#include "conf/conf.h"
#include "conf/warrenctl-admin.h"
#include "storage/store.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void ctl_json_strn(FILE *out, const char *s, size_t len)
{
	fputc('"', out);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

void ctl_json_str(FILE *out, const char *s)
{
	if (s == NULL)
		fputs("null", out);
	else
		ctl_json_strn(out, s, strlen(s));
}

const char *ctl_human_size(uint64_t bytes, const char *zero_text, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	if (bytes == 0 && zero_text != NULL) {
		snprintf(buf, size, "%s", zero_text);
		return buf;
	}
	double v = (double)bytes;
	size_t u = 0;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, size, "%.1f %s", v, units[u]);
	return buf;
}

int ctl_become_store_user(const struct warren_config *conf, const char *cmd)
{
	if (geteuid() != 0)
		return 0;
	struct passwd *pw = getpwnam(conf->user);
	if (pw == NULL) {
		fprintf(stderr, "warrenctl %s: user \"%s\" does not exist\n", cmd, conf->user);
		return -1;
	}
	if (pw->pw_uid == 0)
		return 0;
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		fprintf(stderr, "warrenctl %s: cannot switch to user %s: %s\n", cmd, conf->user,
			strerror(errno));
		return -1;
	}
	return 0;
}

int ctl_store_open(const struct warren_config *conf, const char *cmd, struct store **store_r)
{
	char path[4096];
	struct stat st;
	snprintf(path, sizeof(path), "%s/store", conf->state_dir);
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	if (ctl_become_store_user(conf, cmd) < 0)
		return -1;
	struct store_settings settings = { .dir = conf->state_dir };
	const char *err = "";
	int ret = store_open(&settings, store_r, &err);
	if (ret == STORE_ERECOVER) {
		store_request_recovery(conf->state_dir);
		fprintf(stderr, "warrenctl %s: the store in %s needs recovery; the master was "
			"asked to recover it (or run `warrenctl store verify` with the suite "
			"stopped); try again\n", cmd, conf->state_dir);
		return -1;
	}
	if (ret != STORE_OK) {
		fprintf(stderr, "warrenctl %s: cannot open the store in %s: %s\n", cmd,
			conf->state_dir, err);
		return -1;
	}
	return 1;
}

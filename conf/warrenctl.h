/* warrenctl.h — shared by warrenctl's command files. */
#ifndef WARREN_WARRENCTL_H
#define WARREN_WARRENCTL_H

struct warren_config;

enum ctl_format {
	CTL_FORMAT_NONE,
	CTL_FORMAT_MAILDIR,     /* import/export --maildir */
	CTL_FORMAT_MBOX,        /* import/export --mbox */
};

struct ctl_options {
	const char *config;
	int json;
	int repair;     /* store verify --repair */
	enum ctl_format format;
	const char *folder;     /* import --folder NAME */
	const char *log_file;   /* track --log FILE */
	const char *since;      /* track --since TIME */
	const char *until;      /* track --until TIME */
};

/* `warrenctl store verify|backup` (warrenctl-store.c). */
int ctl_cmd_store(struct ctl_options *opts, int argc, char **argv);
/* `warrenctl domain|user|mailbox ...` (warrenctl-admin.c), `dns` (warrenctl-dns.c). */
int ctl_cmd_domain(struct ctl_options *opts, int argc, char **argv);
int ctl_cmd_user(struct ctl_options *opts, int argc, char **argv);
int ctl_cmd_mailbox(struct ctl_options *opts, int argc, char **argv);
int ctl_cmd_dns(struct ctl_options *opts, int argc, char **argv);
/* `warrenctl queue ...` and `dkim keygen` (warrenctl-queue.c). */
int ctl_cmd_queue(struct ctl_options *opts, int argc, char **argv);
int ctl_cmd_dkim(struct ctl_options *opts, int argc, char **argv);
/* `warrenctl ban list|add|remove` (warrenctl-ban.c). */
int ctl_cmd_ban(struct ctl_options *opts, int argc, char **argv);

/* `warrenctl import|export` (warrenctl-import.c, warrenctl-export.c) and
 * `track` (warrenctl-track.c). */
int ctl_cmd_import(struct ctl_options *opts, int argc, char **argv);
int ctl_cmd_export(struct ctl_options *opts, int argc, char **argv);
int ctl_cmd_track(struct ctl_options *opts, int argc, char **argv);

int ctl_load_config(struct ctl_options *opts, unsigned flags, struct warren_config **conf_r);

#endif

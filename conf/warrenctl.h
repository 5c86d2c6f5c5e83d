/* warrenctl.h — shared by warrenctl's command files. */
#ifndef WARREN_WARRENCTL_H
#define WARREN_WARRENCTL_H

struct warren_config;

struct ctl_options {
	const char *config;
	int json;
	int repair;     /* store verify --repair */
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

int ctl_load_config(struct ctl_options *opts, unsigned flags, struct warren_config **conf_r);

#endif

/* warrenctl.h — shared by warrenctl's command files. */
#ifndef WARREN_WARRENCTL_H
#define WARREN_WARRENCTL_H

struct warren_config;

struct ctl_options {
	const char *config;
	int json;
};

int ctl_load_config(struct ctl_options *opts, unsigned flags, struct warren_config **conf_r);

#endif

/* warrenctl-admin.h — private to warrenctl's command files: output helpers and
 * store access shared by them (in warrenctl-out.c). */
#ifndef WARREN_WARRENCTL_ADMIN_H
#define WARREN_WARRENCTL_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct warren_config;
struct store;

/* A JSON string literal (quotes, escapes); NULL prints null. */
void ctl_json_str(FILE *out, const char *s);
/* The same for len bytes of s. */
void ctl_json_strn(FILE *out, const char *s, size_t len);
/* Started as root: become the config's user, the store's owner, so no file of the
 * store becomes root's. -1 on failure (printed, naming `warrenctl cmd`). */
int ctl_become_store_user(const struct warren_config *conf, const char *cmd);
/* "1.5 MiB"; 0 with zero_text (e.g. "unlimited") when that is not NULL. */
const char *ctl_human_size(uint64_t bytes, const char *zero_text, char *buf, size_t size);

/* Opens the store of conf's state_dir as a non-master process (beside a running
 * suite), as the config's user when started as root. 1: opened; 0: there is no
 * store yet (nothing delivered); -1: error (printed). */
int ctl_store_open(const struct warren_config *conf, const char *cmd, struct store **store_r);

#endif

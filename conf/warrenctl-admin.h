/* warrenctl-admin.h — private to warrenctl's admin commands (warrenctl-admin.c,
 * warrenctl-dns.c, warrenctl-out.c): output helpers shared by them. */
#ifndef WARREN_WARRENCTL_ADMIN_H
#define WARREN_WARRENCTL_ADMIN_H

#include <stdint.h>
#include <stdio.h>

struct warren_config;
struct store;

/* A JSON string literal (quotes, escapes); NULL prints null. */
void ctl_json_str(FILE *out, const char *s);
/* "1.5 MiB"; 0 with zero_text (e.g. "unlimited") when that is not NULL. */
const char *ctl_human_size(uint64_t bytes, const char *zero_text, char *buf, size_t size);

/* Opens the store of conf's state_dir as a non-master process (beside a running
 * suite), as the config's user when started as root. 1: opened; 0: there is no
 * store yet (nothing delivered); -1: error (printed). */
int ctl_store_open(const struct warren_config *conf, const char *cmd, struct store **store_r);

#endif

/* fuzz-conf.c — libFuzzer target for the configuration parser (conf/).
 *
 * Each input is written as a main configuration file in a private folder, with a
 * fixed domain file beside it that the input may include, and loaded with
 * conf_load (TLS contexts skipped). Whatever the input, the load must return a
 * snapshot or errors — never crash, leak or hang — and a snapshot must survive a
 * reference round.
 *
 *   scripts/fuzz.sh fuzz-conf
 */
#include "conf/conf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char main_path[128];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/fuzz-conf-%ld", (long)getpid());
	mkdir(dir, 0700);
	char path[160];
	snprintf(path, sizeof(path), "%s/domain.conf", dir);
	FILE *fp = fopen(path, "w");
	if (fp != NULL) {
		fputs("domain \"b.test\" {\n  mailbox bob { password = \"$6$salt$x\" }\n}\n", fp);
		fclose(fp);
	}
	snprintf(main_path, sizeof(main_path), "%s/warren.conf", dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (dir[0] == '\0')
		setup();
	if (size > 65536)
		return 0;
	FILE *fp = fopen(main_path, "w");
	if (fp == NULL)
		return 0;
	fwrite(data, 1, size, fp);
	fclose(fp);
	struct warren_config *conf = NULL;
	char *errors = NULL;
	if (conf_load(main_path, CONF_LOAD_NO_TLS, &conf, &errors) == 0) {
		struct warren_config *ref = conf_ref(conf);
		conf_unref(&ref);
		conf_unref(&conf);
	} else {
		free(errors);
	}
	return 0;
}

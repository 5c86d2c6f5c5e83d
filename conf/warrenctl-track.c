/* warrenctl-track.c — `warrenctl track`: follows messages through the log. */
#include "conf/warrenctl.h"

#include <stdio.h>

int ctl_cmd_track(struct ctl_options *opts, int argc, char **argv)
{
	fprintf(stderr, "warrenctl track: not yet\n");
	return 1;
}

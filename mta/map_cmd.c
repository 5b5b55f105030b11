/*
 * map_cmd.c - `sluice map query|build|list` (like postmap).  Being written: until then it says so and fails.
 */
#include <stdio.h>

#include "commands.h"

int cmd_map(const char *config_dir, int argc, char **argv)
{
	fprintf(stderr, "sluice: map: not available in this build yet\n");
	return 2;
}

/*
 * queue_cmd.c - `sluice queue list|show|hold|release|requeue|delete|flush`.  Being written: until then it says so and fails.
 */
#include <stdio.h>

#include "commands.h"

int cmd_queue(const char *config_dir, int argc, char **argv)
{
	fprintf(stderr, "sluice: queue: not available in this build yet\n");
	return 2;
}

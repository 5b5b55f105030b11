/*
 * t/unit/dir_fixture.h - looking into a directory a test wrote to (a
 * queue directory, a maildir, an smtp-sink dump directory).
 *
 * Header-only, like tap.h (include it after tap.h):
 *
 *	dir_entries(dir, last, size)
 *		the number of entries of dir whose name does not start
 *		with '.', or -1 when dir cannot be opened; when last is not
 *		NULL, the path "dir/name" of the last one read goes there
 */
#ifndef SLUICE_T_UNIT_DIR_FIXTURE_H
#define SLUICE_T_UNIT_DIR_FIXTURE_H

#include <dirent.h>
#include <stdio.h>

static TAP_UNUSED int dir_entries(const char *dir, char *last, size_t size)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.') {
			n++;
			if (last)
				snprintf(last, size, "%s/%s", dir, de->d_name);
		}
	closedir(d);
	return n;
}

#endif

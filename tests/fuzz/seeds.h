/* tests/fuzz/seeds.h — the seed-corpus plumbing every libFuzzer target here shares.
 *
 * A target includes this file and defines write_seeds(dir): on start-up, when the first corpus
 * directory on the command line is empty, the target's hand-made seeds are written into it
 * (libFuzzer adds new inputs to that first directory). A path that is not a directory (a crash
 * file given to replay) is left alone. Nothing here runs per input.
 */
#ifndef RKV_FUZZ_SEEDS_H
#define RKV_FUZZ_SEEDS_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

static void write_seeds(const char *dir); /* defined by the target */

static int dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	if (d == NULL)
		return 0; /* not a directory (a crash file to replay): leave it alone */
	struct dirent *e;
	int empty = 1;
	while (empty && (e = readdir(d)) != NULL)
		empty = e->d_name[0] == '.';
	closedir(d);
	return empty;
}

static inline void write_seed(const char *dir, int n, const void *b, size_t len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/seed-%02d", dir, n);
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		return;
	fwrite(b, 1, len, f);
	fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	for (int i = 1; i < *argc; i++)
		if ((*argv)[i][0] != '-') {
			if (dir_is_empty((*argv)[i]))
				write_seeds((*argv)[i]);
			break; /* libFuzzer adds new inputs to the first corpus directory */
		}
	return 0;
}

#endif

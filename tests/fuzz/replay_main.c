/*
 * replay_main.c - main() for the fuzz targets without libFuzzer (make
 * check): runs LLVMFuzzerTestOneInput() once on each file named, or on each
 * file of each directory named, so the seed corpus is a regression test.
 */
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static unsigned long replayed;

/* Run the target on the content of `path`, in a buffer of its exact size. */
static int
replay_file(const char *path)
{
	FILE *fp;
	struct stat st;
	uint8_t *buf;
	size_t len;

	if ((fp = fopen(path, "rb")) == NULL || fstat(fileno(fp), &st) == -1) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		if (fp != NULL)
			fclose(fp);
		return -1;
	}
	len = (size_t)st.st_size;
	/* exact size, so a sanitizer sees any read past the input */
	if ((buf = malloc(len > 0 ? len : 1)) == NULL ||
	    fread(buf, 1, len, fp) != len) {
		fprintf(stderr, "%s: read failed\n", path);
		free(buf);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	replayed++;
	return 0;
}

static int
replay(const char *path)
{
	struct stat st;
	struct dirent **names;
	char sub[4096];
	int i, n, rv = 0;

	if (stat(path, &st) == -1) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path);
	/* sorted, so a failure is reproducible in the same order */
	if ((n = scandir(path, &names, NULL, alphasort)) == -1) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path,
			    names[i]->d_name) >= sizeof(sub)) {
				fprintf(stderr, "%s: path too long\n", path);
				rv = -1;
			} else if (stat(sub, &st) == 0 && S_ISREG(st.st_mode) &&
			    replay_file(sub) == -1)
				rv = -1;
		}
		free(names[i]);
	}
	free(names);
	return rv;
}

int
main(int argc, char *argv[])
{
	int i, rv = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s file|directory ...\n", argv[0]);
		return 2;
	}
	for (i = 1; i < argc; i++)
		if (replay(argv[i]) == -1)
			rv = 1;
	printf("replayed %lu inputs\n", replayed);
	return rv;
}

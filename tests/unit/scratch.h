/* Scratch directories for tests that write files: one fresh directory per
 * test under $HS_TEST_TMP (the build dir under ctest; /tmp otherwise),
 * removed with its contents at the end of the test. */
#ifndef HS_TEST_SCRATCH_H
#define HS_TEST_SCRATCH_H

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* mkdtemp'd "$HS_TEST_TMP/<tag>.XXXXXX", malloc'd; NULL on failure. */
static inline char *scratch_dir(const char *tag)
{
    const char *root = getenv("HS_TEST_TMP");
    if (!root || !*root)
        root = "/tmp";
    size_t n = strlen(root) + strlen(tag) + 16;
    char *dir = malloc(n);
    if (!dir)
        return NULL;
    snprintf(dir, n, "%s/%s.XXXXXX", root, tag);
    if (!mkdtemp(dir)) {
        free(dir);
        return NULL;
    }
    return dir;
}

/* "dir/name" in one of 4 rotating static buffers: valid until the 4th
 * call after it. */
static inline const char *scratch_path(const char *dir, const char *name)
{
    static char bufs[4][4096];
    static int next;
    char *b = bufs[next++ % 4];
    if (snprintf(b, sizeof bufs[0], "%s/%s", dir, name) >= (int)sizeof bufs[0])
        abort(); /* a test's path cannot be that long */
    return b;
}

static inline int scratch_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes dir and everything under it, then frees the name. */
static inline void scratch_free(char *dir)
{
    if (!dir)
        return;
    nftw(dir, scratch_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* Writes n bytes to path (replacing it); 0 on success. */
static inline int scratch_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return fclose(f) == 0 && w == n ? 0 : -1;
}

/* Number of entries in dir other than "." and ".."; -1 if unreadable. */
static inline int scratch_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

#endif

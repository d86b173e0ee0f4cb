/* Read-only mappings, atomic file replacement, mkdir -p. */
#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

hs_status hs_file_map(const char *path, hs_mapped_file *m)
{
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hs_error(HS_ERR_IO, "open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return hs_error(HS_ERR_IO, "stat %s: %s", path, strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return hs_error(HS_ERR_IO, "open %s: not a regular file", path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int err = errno;
            close(fd);
            return hs_error(HS_ERR_IO, "mmap %s (%lld bytes): %s", path, (long long)st.st_size, strerror(err));
        }
        m->data = p;
        m->size = (uint64_t)st.st_size;
    }
    close(fd);
    return HS_OK;
}

void hs_file_unmap(hs_mapped_file *m)
{
    if (m->data)
        munmap((void *)m->data, (size_t)m->size);
    m->data = NULL;
    m->size = 0;
}

char *hs_path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p) {
        hs_error(HS_ERR_OUT_OF_MEMORY, "path %s/%s: out of memory", dir, name);
        return NULL;
    }
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

hs_status hs_error_prefix(hs_status s, const char *what)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", hs_last_error());
    return hs_error(s, "%s: %s", what, msg);
}

static void atomic_release(hs_atomic_file *af)
{
    free(af->path);
    free(af->tmp_path);
    af->path = af->tmp_path = NULL;
    af->fp = NULL;
}

hs_status hs_atomic_open(hs_atomic_file *af, const char *path)
{
    memset(af, 0, sizeof *af);
    size_t n = strlen(path);
    af->path = strdup(path);
    af->tmp_path = malloc(n + sizeof ".tmp.XXXXXX");
    if (!af->path || !af->tmp_path) {
        atomic_release(af);
        return hs_error(HS_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    memcpy(af->tmp_path, path, n);
    memcpy(af->tmp_path + n, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    int fd = mkostemp(af->tmp_path, O_CLOEXEC);
    if (fd < 0) {
        hs_status s = hs_error(HS_ERR_IO, "create %s: %s", af->tmp_path, strerror(errno));
        atomic_release(af);
        return s;
    }
    fchmod(fd, 0644);
    af->fp = fdopen(fd, "wb");
    if (!af->fp) {
        hs_status s = hs_error(HS_ERR_IO, "fdopen %s: %s", af->tmp_path, strerror(errno));
        close(fd);
        unlink(af->tmp_path);
        atomic_release(af);
        return s;
    }
    return HS_OK;
}

hs_status hs_atomic_write(hs_atomic_file *af, const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, af->fp) != n)
        return hs_error(HS_ERR_IO, "write %s: %s", af->path, strerror(errno));
    return HS_OK;
}

hs_status hs_atomic_rewrite(hs_atomic_file *af, uint64_t offset, const void *p, size_t n)
{
    if (fseeko(af->fp, (off_t)offset, SEEK_SET) != 0 || fwrite(p, 1, n, af->fp) != n ||
        fseeko(af->fp, 0, SEEK_END) != 0)
        return hs_error(HS_ERR_IO, "write %s: %s", af->path, strerror(errno));
    return HS_OK;
}

void hs_atomic_abort(hs_atomic_file *af)
{
    if (!af->fp)
        return;
    fclose(af->fp);
    unlink(af->tmp_path);
    atomic_release(af);
}

/* fsync of the directory holding `path`, so the rename itself is durable. */
static hs_status sync_parent(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    const char *dir = dirname(copy);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    hs_status s = HS_OK;
    if (fd < 0 || fsync(fd) != 0)
        s = hs_error(HS_ERR_IO, "fsync directory %s: %s", dir, strerror(errno));
    if (fd >= 0)
        close(fd);
    free(copy);
    return s;
}

hs_status hs_atomic_commit(hs_atomic_file *af)
{
    const char *step = "write";
    int ok = fflush(af->fp) == 0;
    if (ok) {
        step = "fsync";
        ok = fsync(fileno(af->fp)) == 0;
    }
    int err = errno;
    if (fclose(af->fp) != 0 && ok) {
        step = "close";
        ok = 0;
        err = errno;
    }
    af->fp = NULL;
    if (ok && rename(af->tmp_path, af->path) != 0) {
        step = "rename";
        ok = 0;
        err = errno;
    }
    hs_status s;
    if (!ok) {
        s = hs_error(HS_ERR_IO, "%s %s (for %s): %s", step, af->tmp_path, af->path, strerror(err));
        unlink(af->tmp_path);
    } else {
        s = sync_parent(af->path);
    }
    atomic_release(af);
    return s;
}

hs_status hs_mkdir_p(const char *dir)
{
    if (!dir[0])
        return hs_error(HS_ERR_INVALID_ARGUMENT, "mkdir: empty directory name");
    char *p = strdup(dir);
    if (!p)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
    hs_status s = HS_OK;
    for (char *q = p + 1;; q++) {
        if (*q != '/' && *q != '\0')
            continue;
        char c = *q;
        *q = '\0';
        struct stat st;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            s = hs_error(HS_ERR_IO, "mkdir %s: %s", p, strerror(errno));
            break;
        }
        if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
            s = hs_error(HS_ERR_IO, "mkdir %s: exists and is not a directory", p);
            break;
        }
        *q = c;
        if (c == '\0')
            break;
    }
    free(p);
    return s;
}

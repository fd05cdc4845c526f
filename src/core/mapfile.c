/* Read-only memory mapping of files. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

/* The read-only file mappings alive in the process, for kl_mapfile_release
 * (a fixed table: mappings past it are simply never released early). */
#define KL_MAP_SLOTS 64
static pthread_mutex_t kl_map_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    const uint8_t *base;
    size_t size;
} kl_maps[KL_MAP_SLOTS];

static void kl_map_register(const void *base, size_t size, bool add) {
    pthread_mutex_lock(&kl_map_mu);
    for (int i = 0; i < KL_MAP_SLOTS; i++) {
        if (add && !kl_maps[i].base) {
            kl_maps[i].base = base;
            kl_maps[i].size = size;
            break;
        }
        if (!add && kl_maps[i].base == base) {
            kl_maps[i].base = NULL;
            kl_maps[i].size = 0;
            break;
        }
    }
    pthread_mutex_unlock(&kl_map_mu);
}

void kl_mapfile_release(const void *p, size_t n) {
    if (!p || !n) return;
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t page = pg > 0 ? (uintptr_t)pg : 4096u;
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1), b = ((uintptr_t)p + n) & ~(page - 1);
    if (b <= a) return;
    pthread_mutex_lock(&kl_map_mu);
    for (int i = 0; i < KL_MAP_SLOTS; i++) {
        uintptr_t mb = (uintptr_t)kl_maps[i].base;
        if (mb && a >= mb && b <= mb + kl_maps[i].size) {
            /* a private read-only file mapping: the pages are read again from
               the file if touched later, so this only lowers the resident set */
            (void)madvise((void *)a, b - a, MADV_DONTNEED);
            break;
        }
    }
    pthread_mutex_unlock(&kl_map_mu);
}

kiln_status kl_mapfile_open(const char *path, kl_mapfile *out) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return kl_errorf(KILN_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return kl_errorf(KILN_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return kl_errorf(KILN_ERR_IO, "'%s' is not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return KILN_OK;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return kl_errorf(KILN_ERR_IO, "cannot map '%s': %s", path, strerror(e));
    out->data = p;
    out->size = (size_t)st.st_size;
    out->map_base = p;
    out->map_size = (size_t)st.st_size;
    kl_map_register(p, (size_t)st.st_size, true);
    return KILN_OK;
}

void kl_mapfile_close(kl_mapfile *m) {
    if (m->map_base) {
        kl_map_register(m->map_base, m->map_size, false);
        munmap(m->map_base, m->map_size);
    }
    memset(m, 0, sizeof *m);
}

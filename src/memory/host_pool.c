/* The host offload pool: NUMA-local pages from libnuma and its counters. */
#include "memory/host_pool.h"

#include "hyperspeed/memory.h"

#include <numa.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t used_bytes, peak_bytes;

static void count(size_t bytes, int add)
{
    if (!add) {
        __atomic_sub_fetch(&used_bytes, bytes, __ATOMIC_RELAXED);
        return;
    }
    const size_t now = __atomic_add_fetch(&used_bytes, bytes, __ATOMIC_RELAXED);
    size_t peak = __atomic_load_n(&peak_bytes, __ATOMIC_RELAXED);
    while (now > peak && !__atomic_compare_exchange_n(&peak_bytes, &peak, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

size_t hs_offload_mem_used(void) { return __atomic_load_n(&used_bytes, __ATOMIC_RELAXED); }

size_t hs_offload_mem_peak(void) { return __atomic_load_n(&peak_bytes, __ATOMIC_RELAXED); }

void hs_offload_mem_reset_peak(void) { __atomic_store_n(&peak_bytes, hs_offload_mem_used(), __ATOMIC_RELAXED); }

hs_status hs_pool_alloc(size_t bytes, int account_only, const char *what, void **out)
{
    *out = NULL;
    if (!account_only) {
        if (numa_available() >= 0) {
            *out = numa_alloc_local(bytes ? bytes : 1); /* fresh pages: zero */
        } else if ((*out = aligned_alloc(4096, (bytes + 4095) / 4096 * 4096))) {
            memset(*out, 0, bytes);
        }
        if (!*out)
            return hs_error(HS_ERR_OUT_OF_MEMORY, "host offload pool: %.1f MiB for %s: out of host memory",
                            (double)bytes / 1048576.0, what);
    }
    count(bytes, 1);
    return HS_OK;
}

void hs_pool_free(void *p, size_t bytes, int account_only)
{
    if (!p && !account_only)
        return;
    if (p)
        numa_available() >= 0 ? numa_free(p, bytes ? bytes : 1) : free(p);
    count(bytes, 0);
}

/* MemAvailable of /proc/meminfo, bytes (0 when unreadable). */
static size_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return (size_t)kb * 1024;
}

size_t hs_pool_available(void)
{
    const size_t avail = mem_available();
    if (numa_available() < 0)
        return avail;
    long long free_bytes = 0;
    const int node = numa_node_of_cpu(sched_getcpu());
    if (node < 0 || numa_node_size64(node, &free_bytes) < 0)
        return avail;
    /* the node's free pages, plus (one node) the page cache the kernel gives back */
    return numa_num_configured_nodes() == 1 && avail > (size_t)free_bytes ? avail : (size_t)free_bytes;
}

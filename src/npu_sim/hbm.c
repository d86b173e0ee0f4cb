/* HBM allocator: capacity accounting, 512-byte-aligned device addresses
 * (host-backed in execute mode, fake in estimate mode) and a sorted table
 * of live allocations for hs_npu_addr_valid's binary search. */
#include "npu_sim/device.h"
#include "npu_sim/trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Extra bytes to get a 512-byte-aligned address out of a 64-byte-aligned
 * hs_alloc block. */
#define BACKING_SLACK (HS_NPU_HBM_ALIGN - 64)

/* Sets up an empty allocator of `capacity` bytes. */
void hs_npu_hbm_init(hs_npu_hbm *h, size_t capacity)
{
    memset(h, 0, sizeof *h);
    h->capacity = capacity;
    h->next_fake = HS_NPU_FAKE_BASE;
}

/* Frees every live allocation's backing memory and the table. */
void hs_npu_hbm_release(hs_npu_hbm *h)
{
    for (size_t i = 0; i < h->count; i++)
        hs_free(h->blocks[i].base);
    free(h->blocks);
    memset(h, 0, sizeof *h);
}

/* Index of the first block whose address is > addr (0..count). */
static size_t upper_bound(const hs_npu_hbm *h, uintptr_t addr)
{
    size_t lo = 0, hi = h->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->blocks[mid].addr <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Address of the live allocation holding [p, p + bytes) (bytes == 0: p
 * inside or one past its end), or 0. */
uintptr_t hs_npu_range_base(const hs_npu *d, const void *p, size_t bytes)
{
    const hs_npu_hbm *h = &d->hbm;
    const uintptr_t a = (uintptr_t)p;
    const size_t i = upper_bound(h, a);
    if (i == 0)
        return 0;
    const hs_npu_block *b = &h->blocks[i - 1];
    const size_t off = a - b->addr;
    return off <= b->bytes && bytes <= b->bytes - off ? b->addr : 0;
}

/* 1 when [p, p + bytes) lies inside one live allocation. */
int hs_npu_addr_valid(const hs_npu *d, const void *p, size_t bytes)
{
    return hs_npu_range_base(d, p, bytes) != 0;
}

/* "1.50 GiB" for n bytes into buf. */
static const char *human(char *buf, size_t cap, size_t n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, u ? "%.2f %s" : "%.0f %s", v, units[u]);
    return buf;
}

/* Samples the "HBM in use" counter at the default stream's clock. */
static void trace_usage(hs_npu *d)
{
    hs_npu_trace_counter(d, "HBM in use", d->default_stream.clock, (double)d->hbm.used);
}

/* Inserts a block at its sorted position. */
static hs_status insert_block(hs_npu_hbm *h, hs_npu_block b)
{
    if (h->count == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        hs_npu_block *nb = realloc(h->blocks, cap * sizeof *nb);
        if (!nb)
            return hs_error(HS_ERR_OUT_OF_MEMORY, "NPU HBM: allocation table of %zu entries", cap);
        h->blocks = nb;
        h->cap = cap;
    }
    size_t i = upper_bound(h, b.addr);
    memmove(&h->blocks[i + 1], &h->blocks[i], (h->count - i) * sizeof *h->blocks);
    h->blocks[i] = b;
    h->count++;
    return HS_OK;
}

/* Allocates `bytes` of HBM (0 bytes: *ptr = NULL). */
hs_status hs_npu_malloc(hs_npu *d, size_t bytes, void **ptr)
{
    if (!d || !ptr)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_npu_malloc: NULL argument");
    *ptr = NULL;
    if (bytes == 0)
        return HS_OK;
    hs_npu_hbm *h = &d->hbm;
    size_t reserved = (bytes + HS_NPU_HBM_ALIGN - 1) & ~(size_t)(HS_NPU_HBM_ALIGN - 1);
    if (reserved < bytes || reserved > h->capacity - h->used) {
        char r[32], u[32], p[32], c[32];
        return hs_error(HS_ERR_OUT_OF_MEMORY,
                        "NPU %s HBM out of memory: requested %zu B (%s), in use %zu B (%s), peak %zu B (%s), "
                        "capacity %zu B (%s)",
                        d->spec.name, bytes, human(r, sizeof r, bytes), h->used, human(u, sizeof u, h->used), h->peak,
                        human(p, sizeof p, h->peak), h->capacity, human(c, sizeof c, h->capacity));
    }
    hs_npu_block b = {0, bytes, reserved, NULL};
    if (d->mode == HS_NPU_EXECUTE) {
        b.base = hs_alloc(reserved + BACKING_SLACK);
        if (!b.base)
            return hs_error(HS_ERR_OUT_OF_MEMORY, "NPU %s: no host memory to back a %zu-byte HBM allocation",
                            d->spec.name, bytes);
        b.addr = ((uintptr_t)b.base + HS_NPU_HBM_ALIGN - 1) & ~(uintptr_t)(HS_NPU_HBM_ALIGN - 1);
        memset((void *)b.addr, 0, reserved);
    } else {
        b.addr = h->next_fake;
        h->next_fake += reserved;
    }
    hs_status st = insert_block(h, b);
    if (st != HS_OK) {
        hs_free(b.base);
        return st;
    }
    h->used += reserved;
    if (h->used > h->peak)
        h->peak = h->used;
    trace_usage(d);
    *ptr = (void *)b.addr;
    return HS_OK;
}

/* Releases the allocation starting at ptr. */
hs_status hs_npu_free_mem(hs_npu *d, void *ptr)
{
    if (!ptr)
        return HS_OK;
    if (!d)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_npu_free_mem: NULL device");
    hs_npu_hbm *h = &d->hbm;
    size_t i = upper_bound(h, (uintptr_t)ptr);
    if (i == 0 || h->blocks[i - 1].addr != (uintptr_t)ptr)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_npu_free_mem: %p is not an allocation of NPU %s (or was freed)",
                        ptr, d->spec.name);
    hs_npu_block *b = &h->blocks[i - 1];
    h->used -= b->reserved;
    hs_free(b->base);
    memmove(b, b + 1, (h->count - i) * sizeof *b);
    h->count--;
    trace_usage(d);
    return HS_OK;
}

/* Bytes in use (rounded to 512 per allocation). */
size_t hs_npu_mem_used(const hs_npu *d)
{
    return d->hbm.used;
}

/* Highest hs_npu_mem_used since the device was made. */
size_t hs_npu_mem_peak(const hs_npu *d)
{
    return d->hbm.peak;
}

/* HBM capacity from the spec. */
size_t hs_npu_mem_capacity(const hs_npu *d)
{
    return d->hbm.capacity;
}

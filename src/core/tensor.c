/* hs_tensor: construction, views, sizes; aligned host allocation. */
#include "hyperspeed/core.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Host allocations carry their size in a 64-byte header in front of the
 * caller's bytes (which stay 64-byte aligned), so that hs_free can count
 * them out: the CPU device's memory in use and its peak. */
#define HEADER 64

static size_t used_bytes, peak_bytes; /* __atomic */

void *hs_alloc(size_t bytes)
{
    const size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes || rounded > SIZE_MAX - HEADER) {
        hs_error(HS_ERR_OUT_OF_MEMORY, "host allocation of %zu bytes is too large", bytes);
        return NULL;
    }
    char *base = aligned_alloc(64, rounded + HEADER);
    if (!base) {
        hs_error(HS_ERR_OUT_OF_MEMORY, "host allocation of %zu bytes failed", bytes);
        return NULL;
    }
    memcpy(base, &rounded, sizeof rounded);
    const size_t now = __atomic_add_fetch(&used_bytes, rounded, __ATOMIC_RELAXED);
    size_t peak = __atomic_load_n(&peak_bytes, __ATOMIC_RELAXED);
    while (now > peak && !__atomic_compare_exchange_n(&peak_bytes, &peak, now, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    return base + HEADER;
}

void hs_free(void *p)
{
    if (!p)
        return;
    char *base = (char *)p - HEADER;
    size_t rounded;
    memcpy(&rounded, base, sizeof rounded);
    __atomic_sub_fetch(&used_bytes, rounded, __ATOMIC_RELAXED);
    free(base);
}

size_t hs_host_mem_used(void) { return __atomic_load_n(&used_bytes, __ATOMIC_RELAXED); }

size_t hs_host_mem_peak(void) { return __atomic_load_n(&peak_bytes, __ATOMIC_RELAXED); }

void hs_host_mem_reset_peak(void) { __atomic_store_n(&peak_bytes, hs_host_mem_used(), __ATOMIC_RELAXED); }

int64_t hs_tensor_numel(const hs_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

size_t hs_tensor_nbytes(const hs_tensor *t) { return (size_t)hs_tensor_numel(t) * hs_dtype_size(t->dtype); }

static hs_status check_shape(hs_dtype dtype, int ndim, const int64_t *shape)
{
    if (hs_dtype_size(dtype) == 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "invalid dtype %d", (int)dtype);
    if (ndim < 1 || ndim > HS_MAX_DIMS)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "tensor rank %d is outside 1..%d", ndim, HS_MAX_DIMS);
    if (!shape)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "tensor shape is NULL");
    for (int i = 0; i < ndim; i++)
        if (shape[i] <= 0)
            return hs_error(HS_ERR_INVALID_ARGUMENT, "tensor dim %d has size %lld; sizes must be positive", i,
                            (long long)shape[i]);
    return HS_OK;
}

static void fill_shape(hs_tensor *t, hs_dtype dtype, int ndim, const int64_t *shape)
{
    t->ndim = ndim;
    t->dtype = dtype;
    t->device = NULL;
    for (int i = 0; i < HS_MAX_DIMS; i++)
        t->shape[i] = i < ndim ? shape[i] : 1;
}

hs_status hs_tensor_new(hs_tensor *t, hs_dtype dtype, int ndim, const int64_t *shape)
{
    if (!t)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_tensor_new: output tensor is NULL");
    memset(t, 0, sizeof *t);
    hs_status s = check_shape(dtype, ndim, shape);
    if (s)
        return s;
    fill_shape(t, dtype, ndim, shape);
    size_t bytes = hs_tensor_nbytes(t);
    t->data = hs_alloc(bytes);
    if (!t->data)
        return HS_ERR_OUT_OF_MEMORY;
    memset(t->data, 0, bytes);
    t->owns = 1;
    return HS_OK;
}

void hs_tensor_free(hs_tensor *t)
{
    if (!t)
        return;
    if (t->owns)
        hs_free(t->data);
    memset(t, 0, sizeof *t);
}

hs_status hs_tensor_view(hs_tensor *t, void *data, hs_dtype dtype, int ndim, const int64_t *shape)
{
    if (!t)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_tensor_view: output tensor is NULL");
    memset(t, 0, sizeof *t);
    if (!data)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_tensor_view: data is NULL");
    hs_status s = check_shape(dtype, ndim, shape);
    if (s)
        return s;
    fill_shape(t, dtype, ndim, shape);
    t->data = data;
    return HS_OK;
}

/* The parameter registry: descriptors and their flat storage. */
#include "memory/registry.h"

#include "core/try.h"
#include "memory/host_pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hs_status hs_registry_init(hs_registry *r, int cap, hs_dtype compute)
{
    *r = (hs_registry){.cap = cap, .compute = compute};
    r->entries = calloc((size_t)cap, sizeof *r->entries);
    r->names = calloc((size_t)cap, HS_REGISTRY_NAME_LEN);
    r->mirror_at = malloc((size_t)cap * sizeof *r->mirror_at);
    if (!r->entries || !r->names || !r->mirror_at)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "registry: %d entries", cap);
    for (int i = 0; i < cap; i++)
        r->mirror_at[i] = -1;
    return HS_OK;
}

int hs_registry_add(hs_registry *r, const hs_param_info *e)
{
    const int i = r->n++;
    char *name = r->names + (size_t)i * HS_REGISTRY_NAME_LEN;
    snprintf(name, HS_REGISTRY_NAME_LEN, "%s", e->name);
    r->entries[i] = *e;
    r->entries[i].name = name;
    r->entries[i].offset = r->numel;
    r->numel += e->numel;
    return i;
}

void hs_registry_keep_fp32(hs_registry *r, int i)
{
    if (i < 0 || i >= r->n || r->mirror_at[i] >= 0)
        return;
    r->mirror_at[i] = r->mirror_numel;
    r->mirror_numel += r->entries[i].numel;
}

void hs_registry_offload_values(hs_registry *r, int account_only)
{
    r->values_on_host = 1;
    r->host_account_only = account_only;
}

void hs_registry_shard_values(hs_registry *r) { r->values_sharded = r->compute != HS_FP32; }

/* The mirror exists under value offload or sharding with a 16-bit compute copy. */
static int mirrored(const hs_registry *r) { return (r->values_on_host || r->values_sharded) && r->compute != HS_FP32; }

hs_status hs_registry_alloc(hs_registry *r, hs_registry_alloc_fn alloc, void *ctx)
{
    const size_t n = (size_t)r->numel;
    void *p;
    p = NULL;
    if (r->values_on_host) {
        HS_TRY(hs_pool_alloc(n * sizeof(float), r->host_account_only, "the fp32 master weights", &p));
        r->host_counted = 1;
    } else if (!r->values_sharded) {
        HS_TRY(alloc(ctx, "parameters", n * sizeof(float), &p));
    }
    r->value = p;
    HS_TRY(alloc(ctx, "gradients", n * sizeof(float), &p));
    r->grad = p;
    r->compute_buf = r->value;
    if (r->compute != HS_FP32 || r->values_on_host || r->values_sharded) {
        HS_TRY(alloc(ctx, "compute-dtype weights", n * hs_dtype_size(r->compute), &p));
        r->compute_buf = p;
    }
    if (mirrored(r) && r->mirror_numel) {
        HS_TRY(alloc(ctx, "fp32 norm weights, biases and embeddings", (size_t)r->mirror_numel * sizeof(float), &p));
        r->mirror = p;
    }
    return HS_OK;
}

void hs_registry_free(hs_registry *r, hs_registry_free_fn release, void *ctx)
{
    if (r->compute_buf != r->value)
        release(ctx, r->compute_buf);
    release(ctx, r->grad);
    if (r->values_on_host) {
        if (r->host_counted)
            hs_pool_free(r->value, (size_t)r->numel * sizeof(float), r->host_account_only);
    }
    else
        release(ctx, r->value);
    release(ctx, r->mirror);
    free(r->names);
    free(r->entries);
    free(r->mirror_at);
    *r = (hs_registry){0};
}

int hs_registry_find(const hs_registry *r, const char *name)
{
    for (int i = 0; name && i < r->n; i++)
        if (strcmp(r->entries[i].name, name) == 0)
            return i;
    return -1;
}

/* The flat buffer of part, its dtype and the device it is on. */
static void *buffer(const hs_registry *r, hs_param_part part, hs_dtype *dt, hs_device **dev)
{
    *dt = part == HS_PARAM_COMPUTE ? r->compute : HS_FP32;
    if (part == HS_PARAM_VALUE && r->values_on_host)
        *dev = NULL;
    return part == HS_PARAM_VALUE ? (void *)r->value : part == HS_PARAM_GRAD ? (void *)r->grad : r->compute_buf;
}

/* Entry p's view of the buffer at base + at elements of dt, on dev. */
static hs_tensor entry_view(const hs_param_info *p, char *base, int64_t at, hs_dtype dt, hs_device *dev)
{
    hs_tensor t = {base ? base + at * (int64_t)hs_dtype_size(dt) : NULL,
                   {p->shape[0], p->shape[1], p->shape[2], p->shape[3]},
                   p->ndim,
                   dt,
                   dev,
                   0};
    return t;
}

hs_tensor hs_registry_view(const hs_registry *r, int i, hs_param_part part, hs_device *dev)
{
    hs_dtype dt;
    char *base = buffer(r, part, &dt, &dev);
    return entry_view(&r->entries[i], base, r->entries[i].offset, dt, dev);
}

hs_tensor hs_registry_kernel_view(const hs_registry *r, int i, hs_device *dev)
{
    if (!r->values_on_host && !r->values_sharded)
        return hs_registry_view(r, i, HS_PARAM_VALUE, dev);
    if (!mirrored(r))
        return entry_view(&r->entries[i], r->compute_buf, r->entries[i].offset, HS_FP32, dev);
    return entry_view(&r->entries[i], r->mirror_at[i] >= 0 ? (char *)r->mirror : NULL, r->mirror_at[i], HS_FP32,
                      dev);
}

hs_tensor hs_registry_span(const hs_registry *r, hs_param_part part, int64_t begin, int64_t end, hs_device *dev)
{
    hs_dtype dt;
    char *base = buffer(r, part, &dt, &dev);
    return hs_on(hs_view1(base ? base + begin * (int64_t)hs_dtype_size(dt) : NULL, dt, end - begin), dev);
}

/* The parameter registry: descriptors and their flat storage. */
#include "memory/registry.h"

#include "core/try.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hs_status hs_registry_init(hs_registry *r, int cap, hs_dtype compute)
{
    *r = (hs_registry){.cap = cap, .compute = compute};
    r->entries = calloc((size_t)cap, sizeof *r->entries);
    r->names = calloc((size_t)cap, HS_REGISTRY_NAME_LEN);
    if (!r->entries || !r->names)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "registry: %d entries", cap);
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

hs_status hs_registry_alloc(hs_registry *r, hs_registry_alloc_fn alloc, void *ctx)
{
    const size_t n = (size_t)r->numel;
    void *p;
    HS_TRY(alloc(ctx, "parameters", n * sizeof(float), &p));
    r->value = p;
    HS_TRY(alloc(ctx, "gradients", n * sizeof(float), &p));
    r->grad = p;
    r->compute_buf = r->value;
    if (r->compute != HS_FP32) {
        HS_TRY(alloc(ctx, "compute-dtype weights", n * hs_dtype_size(r->compute), &p));
        r->compute_buf = p;
    }
    return HS_OK;
}

void hs_registry_free(hs_registry *r, hs_registry_free_fn release, void *ctx)
{
    if (r->compute_buf != r->value)
        release(ctx, r->compute_buf);
    release(ctx, r->grad);
    release(ctx, r->value);
    free(r->names);
    free(r->entries);
    *r = (hs_registry){0};
}

int hs_registry_find(const hs_registry *r, const char *name)
{
    for (int i = 0; name && i < r->n; i++)
        if (strcmp(r->entries[i].name, name) == 0)
            return i;
    return -1;
}

/* The flat buffer of part and its dtype. */
static void *buffer(const hs_registry *r, hs_param_part part, hs_dtype *dt)
{
    *dt = part == HS_PARAM_COMPUTE ? r->compute : HS_FP32;
    return part == HS_PARAM_VALUE ? (void *)r->value : part == HS_PARAM_GRAD ? (void *)r->grad : r->compute_buf;
}

hs_tensor hs_registry_view(const hs_registry *r, int i, hs_param_part part, hs_device *dev)
{
    const hs_param_info *p = &r->entries[i];
    hs_dtype dt;
    char *base = buffer(r, part, &dt);
    void *at = base ? base + p->offset * (int64_t)hs_dtype_size(dt) : NULL;
    hs_tensor t = {at, {p->shape[0], p->shape[1], p->shape[2], p->shape[3]}, p->ndim, dt, dev, 0};
    return t;
}

hs_tensor hs_registry_span(const hs_registry *r, hs_param_part part, int64_t begin, int64_t end, hs_device *dev)
{
    hs_dtype dt;
    char *base = buffer(r, part, &dt);
    return hs_on(hs_view1(base ? base + begin * (int64_t)hs_dtype_size(dt) : NULL, dt, end - begin), dev);
}

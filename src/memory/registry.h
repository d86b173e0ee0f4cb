/* The parameter registry (DESIGN.md "Parameters, storage and memory"): one
 * descriptor per registered tensor (hs_param_info: name, logical shape and
 * split, offset) and the storage of its value, its gradient and its
 * compute-dtype copy. The storage is three flat buffers on the owner's
 * device, so the optimizer runs one AdamW loop and data parallelism one
 * bucket plan over them; layer code and everything else reach a tensor
 * through hs_registry_view, never through base + offset arithmetic of its
 * own, so a later residency policy (sharded, offloaded) changes only this
 * module. */
#ifndef HS_MEMORY_REGISTRY_H
#define HS_MEMORY_REGISTRY_H

#include "hyperspeed/model.h"

#define HS_REGISTRY_NAME_LEN 48

typedef struct hs_registry {
    hs_param_info *entries;
    int n, cap;
    char *names;      /* cap names of HS_REGISTRY_NAME_LEN bytes, owned */
    int64_t numel;    /* elements of all entries: each flat buffer's length */
    hs_dtype compute; /* dtype of the compute copy; fp32: the values themselves */
    float *value, *grad;
    void *compute_buf;
} hs_registry;

/* Device memory of the registry's owner: allocates `bytes` for `what`
 * (its errors name both), or releases p. */
typedef hs_status (*hs_registry_alloc_fn)(void *ctx, const char *what, size_t bytes, void **out);
typedef void (*hs_registry_free_fn)(void *ctx, void *p);

/* An empty registry of room for `cap` entries whose compute copy is of
 * dtype `compute`. Errors: HS_ERR_OUT_OF_MEMORY. */
hs_status hs_registry_init(hs_registry *r, int cap, hs_dtype compute);
/* Registers entry e (its name copied; offset set to the end of the flat
 * buffers) and returns its index. The caller sized cap for every entry. */
int hs_registry_add(hs_registry *r, const hs_param_info *e);
/* Allocates the value, gradient and (16-bit compute) compute buffers. */
hs_status hs_registry_alloc(hs_registry *r, hs_registry_alloc_fn alloc, void *ctx);
/* Releases the buffers (through release) and the descriptors. */
void hs_registry_free(hs_registry *r, hs_registry_free_fn release, void *ctx);

/* Index of the entry called name, or -1. */
int hs_registry_find(const hs_registry *r, const char *name);
/* Entry i's part as a tensor of its shape on device dev (data NULL before
 * hs_registry_alloc). */
hs_tensor hs_registry_view(const hs_registry *r, int i, hs_param_part part, hs_device *dev);
/* Elements [begin, end) of the flat buffer of part, as a 1-D tensor on dev:
 * what one fused loop (AdamW, a bucket, the norm) walks. */
hs_tensor hs_registry_span(const hs_registry *r, hs_param_part part, int64_t begin, int64_t end, hs_device *dev);

#endif

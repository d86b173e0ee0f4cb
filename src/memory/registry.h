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
    /* Host offload of the values (hs_registry_offload_values): value is
     * the fp32 master in the host pool, compute_buf always a device buffer
     * of its own, and the entries the kernels read in fp32 (keep_fp32)
     * have a device copy in mirror at mirror_at[i] (-1: none) when the
     * compute copy is 16-bit; with fp32 compute the compute copy serves. */
    int values_on_host, host_account_only, host_counted;
    /* ZeRO-1 with a 16-bit compute copy (hs_registry_shard_values): the
     * fp32 master is the sharded optimizer's, value is NULL; the compute
     * copy and the mirror as under value offload */
    int values_sharded;
    float *mirror;
    int64_t *mirror_at, mirror_numel;
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
/* Marks entry i as read in fp32 by the kernels (norm weights, biases,
 * embedding tables): under value offload it keeps a device copy. */
void hs_registry_keep_fp32(hs_registry *r, int i);
/* Before hs_registry_alloc: the values go to the host offload pool
 * (account_only: an estimate-mode device, counted, not allocated). */
void hs_registry_offload_values(hs_registry *r, int account_only);
/* Before hs_registry_alloc, with a 16-bit compute copy: no fp32 values
 * here (the DP-sharded optimizer holds the master), a mirror of the keep_fp32
 * entries instead. */
void hs_registry_shard_values(hs_registry *r);
/* Allocates the value, gradient and (16-bit compute, or offloaded values)
 * compute buffers, and the fp32 mirror of offloaded values. */
hs_status hs_registry_alloc(hs_registry *r, hs_registry_alloc_fn alloc, void *ctx);
/* Releases the buffers (through release) and the descriptors. */
void hs_registry_free(hs_registry *r, hs_registry_free_fn release, void *ctx);

/* Index of the entry called name, or -1. */
int hs_registry_find(const hs_registry *r, const char *name);
/* Entry i's part as a tensor of its shape on device dev (data NULL before
 * hs_registry_alloc); offloaded values are on the host (device NULL). */
hs_tensor hs_registry_view(const hs_registry *r, int i, hs_param_part part, hs_device *dev);
/* Entry i's fp32 values as the kernels read them, on dev: the values, or
 * under value offload their device copy (the compute copy for fp32
 * compute, else the mirror: data NULL for an entry not kept in fp32). */
hs_tensor hs_registry_kernel_view(const hs_registry *r, int i, hs_device *dev);
/* Elements [begin, end) of the flat buffer of part, as a 1-D tensor on dev
 * (offloaded values: on the host): what one fused loop (AdamW, a bucket,
 * the norm) walks. */
hs_tensor hs_registry_span(const hs_registry *r, hs_param_part part, int64_t begin, int64_t end, hs_device *dev);

#endif

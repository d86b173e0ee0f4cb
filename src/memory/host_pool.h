/* The host offload pool (docs/memory.md "Host offload"): host memory on
 * the NUMA node of the calling thread (libnuma; the runtime binds each
 * rank with hwloc, so this is the rank's node) for the state moved off the
 * device. An estimate-mode NPU run only accounts it: no memory, a NULL
 * address, the same counters (hs_offload_mem_used / _peak). */
#ifndef HS_MEMORY_HOST_POOL_H
#define HS_MEMORY_HOST_POOL_H

#include "hyperspeed/core.h"

/* bytes of zeroed NUMA-local memory for `what` (named in errors) into
 * *out, or (account_only) just counted. Errors: HS_ERR_OUT_OF_MEMORY. */
hs_status hs_pool_alloc(size_t bytes, int account_only, const char *what, void **out);
/* Releases what hs_pool_alloc gave for the same bytes and account_only. */
void hs_pool_free(void *p, size_t bytes, int account_only);
/* Bytes the pool may still take: the free memory of the calling thread's
 * NUMA node (the system's available memory without NUMA support). */
size_t hs_pool_available(void);

#endif

/* Private definition of the NPU device (include/hyperspeed/npu.h): what
 * the device, HBM, stream and launch code share.
 *
 * Device addresses: in execute mode a device address IS the host pointer
 * backing the allocation (kernels read and write it directly); in estimate
 * mode it is a unique fake address that must never be dereferenced. Either
 * way hs_npu_addr_valid tells whether a range lies inside one live
 * allocation. A device is used by one thread at a time; several devices
 * may run on several threads at once (nothing here is global).
 */
#ifndef HS_NPU_SIM_DEVICE_H
#define HS_NPU_SIM_DEVICE_H

#include "core/device.h"
#include "hyperspeed/npu.h"
#include "npu_sim/trace.h"

#include <stddef.h>
#include <stdint.h>

struct hs_npu_trace;        /* trace.c: the recorder while a trace is active */
struct hs_npu_launch_state; /* launch.c: per-device launch/core-model state */

/* Frees the launch code's per-device state; hs_npu_free calls it when
 * d->launch_state is non-NULL (defined by the launch code). */
void hs_npu_launch_state_free(struct hs_npu_launch_state *st);

/* One live HBM allocation. */
typedef struct hs_npu_block {
    uintptr_t addr;  /* device address (execute: the host pointer) */
    size_t bytes;    /* as requested */
    size_t reserved; /* bytes counted against capacity (rounded to 512) */
    void *base;      /* hs_alloc'd host block behind addr (execute), else NULL */
} hs_npu_block;

/* HBM allocator state: live blocks sorted by address. */
typedef struct hs_npu_hbm {
    hs_npu_block *blocks;
    size_t count, cap;
    size_t used, peak, capacity; /* bytes */
    uintptr_t next_fake;         /* estimate mode: next fake address */
} hs_npu_hbm;

#define HS_NPU_HBM_ALIGN 512
#define HS_NPU_FAKE_BASE ((uintptr_t)0x7e0000000000ULL)

struct hs_npu_stream {
    hs_npu *device;
    hs_device handle; /* hs_npu_stream_device: this stream of this NPU */
    double clock; /* simulated seconds since device creation: when the stream's next work may start */
    int id;       /* 0 for the default stream; trace thread "stream<id>" */
};

struct hs_npu_event {
    hs_npu *device;
    double time;  /* stream clock when recorded */
    int recorded; /* 0 until the first hs_npu_event_record */
};

struct hs_npu {
    hs_npu_spec spec;
    hs_npu_mode mode;
    int index; /* trace process names "npu<index>"; 0 unless a cluster layer numbers its devices */
    hs_npu_hbm hbm;
    hs_npu_stream default_stream;
    int next_stream_id;
    hs_npu_launch_stats last_launch;           /* written by the launch code */
    struct hs_npu_trace *trace;                /* NULL when not tracing */
    struct hs_npu_launch_state *launch_state; /* owned by the launch code; NULL until it makes one */
    int timing_cache;                          /* launches with a key reuse cached timings */
    uint64_t cache_hits, cache_misses;
};

/* 1 when [p, p + bytes) lies inside one live allocation of d (bytes == 0:
 * p inside or one past the end of one). O(log allocations). */
int hs_npu_addr_valid(const hs_npu *d, const void *p, size_t bytes);
/* Address of the live allocation holding [p, p + bytes), or 0.
 * O(log allocations). */
uintptr_t hs_npu_range_base(const hs_npu *d, const void *p, size_t bytes);

/* hs_npu_stream_advance with key/value args attached to the trace slice
 * (the launch code attaches cube_util, vector_util, hbm_bytes, l2_bytes,
 * flops to its "kernel" slices; `hs-npu prof` reads them back). */
double hs_npu_stream_advance_args(hs_npu_stream *s, const char *name, const char *category, double seconds,
                                  const hs_npu_trace_arg *args, int nargs);

/* Process name of the device's own trace tracks ("npu<index>") into buf. */
void hs_npu_process_name(const hs_npu *d, char *buf, size_t cap);

/* HBM allocator internals (hbm.c), used by hs_npu_new / hs_npu_free. */
void hs_npu_hbm_init(hs_npu_hbm *h, size_t capacity);
void hs_npu_hbm_release(hs_npu_hbm *h);

#endif

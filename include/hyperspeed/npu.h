/* hyperspeed NPU: a software model of a Huawei Ascend NPU (Da Vinci AI
 * cores, HBM, L2) that runs the fused kernels and accounts their time in
 * simulated cycles. docs/npu_model.md gives every parameter's source and
 * every cost formula; ../shared/NPU_FACTS.md the hardware numbers.
 *
 * Levels:
 *   spec    - hs_npu_spec: cores, clocks, buffer sizes, bandwidths, latencies
 *   device  - hs_npu: HBM allocator, streams with simulated clocks, events,
 *             host<->device copies over PCIe, kernel launch, trace
 *   core    - src/npu_sim/isa.h (private): the instruction API kernels are
 *             written against (MTE2/MTE1/CUBE/FIXPIPE/VECTOR/MTE3/SCALAR pipes)
 *
 * Modes: HS_NPU_EXECUTE moves and computes real data (device memory is
 * backed by host memory); HS_NPU_ESTIMATE runs the same instruction stream
 * with the same timing but no data: allocations are only counted and
 * device pointers must never be dereferenced.
 */
#ifndef HYPERSPEED_NPU_H
#define HYPERSPEED_NPU_H

#include "hyperspeed/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ spec */

typedef struct hs_npu_spec {
    char name[32];
    int cube_cores;          /* AIC count (CANN: cube_core_cnt / ai_core_cnt) */
    int vector_cores;        /* AIV count (vector_core_cnt); 0 on 910A, whose AI core does both */
    double freq_hz;          /* AI core clock (ai_core_freq / cube_freq) */
    int64_t l1_bytes, l0a_bytes, l0b_bytes, l0c_bytes; /* per AIC */
    int64_t bias_table_bytes, fixpipe_bytes;           /* per AIC */
    int64_t ub_bytes;        /* per AIV (per AI core on 910A) */
    int64_t l2_bytes;        /* chip */
    int64_t hbm_bytes;       /* chip (memory_size) */
    double hbm_bw;           /* chip HBM bandwidth, bytes/s */
    double ddr_rate;         /* per-core GM<->HBM rate, bytes/cycle */
    double l2_read_rate, l2_write_rate; /* per-core, bytes/cycle */
    double l1_to_l0_rate;    /* MTE1, bytes/cycle */
    double ub_to_l2_rate;    /* MTE3, bytes/cycle */
    double fixpipe_rate;     /* L0C -> GM/UB, bytes/cycle */
    int cube_m, cube_k, cube_n; /* fp16/bf16 MACs per cycle = m*k*n (16x16x16) */
    int vector_bytes;        /* bytes one vector repeat processes per cycle (256) */
    int lat_mte2, lat_mte1, lat_cube, lat_fixpipe, lat_vector, lat_mte3, lat_scalar; /* fixed cycles per instruction */
    double launch_overhead_s; /* per kernel launch */
    double pcie_bw;           /* host<->device, bytes/s */
    double pcie_latency_s;
    int64_t host_bytes;       /* the host DRAM share of one NPU (its rank's offload pool) */
    double host_bw;           /* the host memory bandwidth one NPU's rank gets (host-side AdamW), bytes/s */
} hs_npu_spec;

/* Fills *out with a preset: "910B2", "910B3", "910B4", "910C" (one die),
 * "910A", "test" (a small chip for tests: 2 cube + 4 vector cores, small
 * HBM). Errors: HS_ERR_NOT_FOUND naming the preset and the known ones. */
HS_API hs_status hs_npu_spec_preset(const char *name, hs_npu_spec *out);
/* NULL-terminated preset names. */
HS_API const char *const *hs_npu_preset_names(void);

/* Reads a CANN-style platform .ini (sections like [SoCInfo],
 * [AICoreSpec], [AICoreMemoryRates]; keys ai_core_cnt, cube_core_cnt,
 * vector_core_cnt, ai_core_freq / cube_freq (MHz), l0_a_size, l0_b_size,
 * l0_c_size, l1_size, ub_size, l2_size, memory_size, ddr_rate,
 * l2_read_rate, l2_write_rate, hbm_bandwidth (GB/s) ...) over `base`
 * (a preset, or NULL for "910B2"). Unknown keys are ignored with an info
 * log line. Errors: HS_ERR_IO (cannot open), HS_ERR_FORMAT (a malformed
 * line or value, naming file, line and key), HS_ERR_INVALID_ARGUMENT (a
 * resulting spec that fails hs_npu_spec_validate). */
HS_API hs_status hs_npu_spec_load_ini(const char *path, const hs_npu_spec *base, hs_npu_spec *out);

/* Every count, size, rate and clock positive (vector_cores may be 0).
 * Errors: HS_ERR_INVALID_ARGUMENT naming the field. */
HS_API hs_status hs_npu_spec_validate(const hs_npu_spec *s);

/* Derived figures: cube peak in FLOP/s for fp16/bf16 (cores * m*k*n * 2 *
 * freq; int8 twice that; other dtypes 0), vector peak in bytes/s, HBM
 * capacity and bandwidth as in the spec. */
HS_API double hs_npu_peak_flops(const hs_npu_spec *s, hs_dtype dt);
HS_API double hs_npu_vector_bytes_per_s(const hs_npu_spec *s);

/* ---------------------------------------------------------------- device */

typedef enum hs_npu_mode {
    HS_NPU_EXECUTE = 0,
    HS_NPU_ESTIMATE = 1
} hs_npu_mode;

typedef struct hs_npu hs_npu;
typedef struct hs_npu_stream hs_npu_stream;
typedef struct hs_npu_event hs_npu_event;

/* A device with the spec's cores and HBM. It owns one default stream.
 * Errors: HS_ERR_INVALID_ARGUMENT (spec), HS_ERR_OUT_OF_MEMORY. */
HS_API hs_status hs_npu_new(const hs_npu_spec *spec, hs_npu_mode mode, hs_npu **out);
HS_API void hs_npu_free(hs_npu *d);
HS_API const hs_npu_spec *hs_npu_spec_of(const hs_npu *d);
HS_API hs_npu_mode hs_npu_mode_of(const hs_npu *d);

/* Device handles (hyperspeed/core.h hs_device): a tensor placed on one
 * (hs_on) is in this NPU's HBM, and kernels on it run on the handle's
 * stream. hs_npu_device: d on its default stream (owned by d);
 * hs_npu_stream_device: stream s (owned by s). There is no current device:
 * each call names its device through its tensors (an aclrtSetDevice-free
 * model), so one thread per NPU may drive several NPUs at once. */
HS_API hs_device *hs_npu_device(hs_npu *d);
HS_API hs_device *hs_npu_stream_device(hs_npu_stream *s);
/* The NPU and the stream behind a handle; NULL for the CPU. */
HS_API hs_npu *hs_device_npu(const hs_device *dev);
HS_API hs_npu_stream *hs_device_stream(const hs_device *dev);

/* HBM. hs_npu_malloc returns a 512-byte-aligned device address: backed by
 * host memory in execute mode, a never-dereferenced address in estimate
 * mode. Errors: HS_ERR_OUT_OF_MEMORY with requested, in use, peak and
 * capacity in the message. */
HS_API hs_status hs_npu_malloc(hs_npu *d, size_t bytes, void **ptr);
/* Releases an allocation (NULL is fine). Errors: HS_ERR_INVALID_ARGUMENT
 * for an address this device did not hand out. */
HS_API hs_status hs_npu_free_mem(hs_npu *d, void *ptr);
HS_API size_t hs_npu_mem_used(const hs_npu *d);
HS_API size_t hs_npu_mem_peak(const hs_npu *d);
HS_API size_t hs_npu_mem_capacity(const hs_npu *d);

/* Streams: each has a simulated clock (seconds since device creation);
 * work on a stream runs in order. */
HS_API hs_status hs_npu_stream_new(hs_npu *d, hs_npu_stream **out);
HS_API void hs_npu_stream_free(hs_npu_stream *s);
HS_API hs_npu_stream *hs_npu_default_stream(hs_npu *d);
HS_API double hs_npu_stream_time(const hs_npu_stream *s);
/* Events: record captures the stream's clock; wait makes a stream's next
 * work start no earlier than the event. */
HS_API hs_status hs_npu_event_new(hs_npu *d, hs_npu_event **out);
HS_API void hs_npu_event_free(hs_npu_event *e);
HS_API void hs_npu_event_record(hs_npu_event *e, hs_npu_stream *s);
HS_API void hs_npu_stream_wait(hs_npu_stream *s, const hs_npu_event *e);
/* Advances stream s by `seconds` of work called `name` (category "kernel",
 * "copy", "comm"), returning its simulated start; records a trace slice.
 * Kernel launch and copies use it; later layers (collectives) too. */
HS_API double hs_npu_stream_advance(hs_npu_stream *s, const char *name, const char *category, double seconds);

/* Host<->device copies over the PCIe model: latency + bytes / pcie_bw on
 * stream s (NULL: default). Execute mode copies the bytes; estimate mode
 * only accounts. Errors: HS_ERR_INVALID_ARGUMENT (an address range outside
 * a live allocation). */
HS_API hs_status hs_npu_memcpy_h2d(hs_npu *d, hs_npu_stream *s, void *dst, const void *src, size_t bytes);
HS_API hs_status hs_npu_memcpy_d2h(hs_npu *d, hs_npu_stream *s, void *dst, const void *src, size_t bytes);

/* ---------------------------------------------------------------- launch */

/* What one kernel launch cost, in simulated time. */
typedef struct hs_npu_launch_stats {
    double seconds;           /* launch overhead + slowest core */
    uint64_t cycles;          /* slowest core */
    uint64_t pipe_busy[7];    /* busy cycles per pipe summed over cores (MTE2, MTE1, CUBE, FIXPIPE, VECTOR, MTE3, SCALAR) */
    uint64_t hbm_bytes;       /* bytes moved to/from HBM */
    uint64_t l2_bytes;        /* bytes served by L2 */
    double cube_utilisation;  /* cube busy cycles / (cube cores used * cycles) */
} hs_npu_launch_stats;

/* The stats of the last launch on device d. */
HS_API hs_npu_launch_stats hs_npu_last_launch(const hs_npu *d);

/* Kernel timing cache (on by default; HS_NPU_TIMING_CACHE=0 in the
 * environment turns it off for new devices). A kernel launched again with
 * the same shapes, dtypes and operand geometry reuses its simulated time
 * (DESIGN: timings "may be cached by kernel, shapes, dtypes, spec"); the
 * numbers are identical to a fresh simulation. Off: every launch is
 * simulated (for testing the cache itself). */
HS_API void hs_npu_set_timing_cache(hs_npu *d, int enabled);
/* Launches served from the cache and launches simulated since creation. */
HS_API void hs_npu_timing_cache_stats(const hs_npu *d, uint64_t *hits, uint64_t *misses);

/* ----------------------------------------------------------------- trace */

/* Starts recording a Chrome trace (Perfetto-viewable JSON) of every launch,
 * copy and stream slice, pipes per core and an HBM-in-use counter; written
 * to `path` by hs_npu_trace_stop (or hs_npu_free). Errors: HS_ERR_IO;
 * HS_ERR_INVALID_ARGUMENT when a trace is already recording. */
HS_API hs_status hs_npu_trace_start(hs_npu *d, const char *path);
HS_API hs_status hs_npu_trace_stop(hs_npu *d);

/* One kernel's totals over the "kernel" slices of a trace written by
 * hs_npu_trace_stop, from the args the launch code attaches. */
typedef struct hs_npu_kernel_profile {
    char name[64];
    int64_t count;
    double seconds;                /* summed simulated time */
    double flops;                  /* summed args "flops" */
    double hbm_bytes, l2_bytes;    /* summed args "hbm_bytes", "l2_bytes" */
    double cube_util, vector_util; /* time-weighted means of "cube_util", "vector_util"; -1 when absent */
} hs_npu_kernel_profile;

/* Reads a trace and returns its kernels, most simulated time first, in
 * *out (release with free()). Errors: HS_ERR_IO, HS_ERR_FORMAT (not JSON or
 * no "traceEvents" array), HS_ERR_OUT_OF_MEMORY. */
HS_API hs_status hs_npu_trace_profile(const char *path, hs_npu_kernel_profile **out, size_t *count);

#ifdef __cplusplus
}
#endif
#endif

/* hyperspeed core: status codes, errors, logging, dtypes, tensors, RNG.
 *
 * Every fallible call returns an hs_status (HS_OK == 0). On failure the
 * library also records a sentence with context, readable through
 * hs_last_error() on the same thread until the next failing call.
 */
#ifndef HYPERSPEED_CORE_H
#define HYPERSPEED_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(HS_BUILDING_LIBRARY)
#define HS_API __attribute__((visibility("default")))
#else
#define HS_API
#endif

/* ---------------------------------------------------------------- status */

typedef enum hs_status {
    HS_OK = 0,
    HS_ERR_INVALID_ARGUMENT, /* a size, shape, flag or value the call cannot take */
    HS_ERR_SHAPE_MISMATCH,   /* tensors whose shapes do not fit together */
    HS_ERR_DTYPE,            /* a dtype the operation does not support */
    HS_ERR_OUT_OF_MEMORY,    /* host or device allocation failed */
    HS_ERR_IO,               /* open/read/write/rename failed */
    HS_ERR_FORMAT,           /* a file whose contents are malformed or truncated */
    HS_ERR_NOT_FOUND,        /* an unknown name: preset, tensor, key */
    HS_ERR_DEVICE,           /* an operation the tensor's device cannot run */
    HS_ERR_NPU_BUFFER,       /* a tile that does not fit an on-chip buffer */
    HS_ERR_COMM,             /* a collective or transport failure */
    HS_ERR_INTERNAL,         /* an invariant broke: a bug in hyperspeed */
    HS_STATUS_COUNT
} hs_status;

/* The version of this header; hs_version gives the loaded library's,
 * which may be newer (the library keeps what older headers declared). */
#define HS_VERSION_MAJOR 0
#define HS_VERSION_MINOR 2
#define HS_VERSION_PATCH 0

/* The library's version as "MAJOR.MINOR.PATCH" (static, never NULL); each
 * of major, minor, patch receives its part when not NULL. */
HS_API const char *hs_version(int *major, int *minor, int *patch);

/* Short stable name of a status code ("HS_ERR_IO"); never NULL. */
HS_API const char *hs_status_str(hs_status s);

/* The message of the most recent failure on this thread ("" if none).
 * The pointer stays valid until the next failing call on this thread. */
HS_API const char *hs_last_error(void);

/* Clears this thread's error message. */
HS_API void hs_clear_error(void);

/* Records a formatted error message for this thread and returns `s`, so a
 * failing path reads `return hs_error(HS_ERR_IO, "open %s: %s", p, strerror(errno));` */
HS_API hs_status hs_error(hs_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --------------------------------------------------------------- logging */

typedef enum hs_log_level {
    HS_LOG_ERROR = 0,
    HS_LOG_WARN = 1,
    HS_LOG_INFO = 2,
    HS_LOG_DEBUG = 3
} hs_log_level;

/* Current level: HS_LOG_LEVEL environment variable (error|warn|info|debug or
 * 0..3) read once; default warn. */
HS_API hs_log_level hs_log_get_level(void);
HS_API void hs_log_set_level(hs_log_level level);

/* Prints "[hs LEVEL] message" to stderr when `level` <= the current level. */
HS_API void hs_log(hs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------- dtypes */

typedef enum hs_dtype {
    HS_FP32 = 0,
    HS_BF16,
    HS_FP16,
    HS_INT32,
    HS_INT64,
    HS_INT8,
    HS_DTYPE_COUNT
} hs_dtype;

/* Bytes per element (4, 2, 2, 4, 8, 1); 0 for an invalid dtype. */
HS_API size_t hs_dtype_size(hs_dtype dt);
/* Lower-case name ("fp32", "bf16", ...); "invalid" for an invalid dtype. */
HS_API const char *hs_dtype_name(hs_dtype dt);
/* Parses a name as printed by hs_dtype_name; HS_ERR_NOT_FOUND otherwise. */
HS_API hs_status hs_dtype_parse(const char *name, hs_dtype *out);

/* Scalar conversions, round-to-nearest-even; NaN stays NaN (quiet),
 * Inf stays Inf, fp16 subnormals are exact. */
HS_API uint16_t hs_fp32_to_bf16(float x);
HS_API float hs_bf16_to_fp32(uint16_t h);
HS_API uint16_t hs_fp32_to_fp16(float x);
HS_API float hs_fp16_to_fp32(uint16_t h);

/* Bulk conversions of n elements, vectorised for the level hs_cpu_isa()
 * gives (AVX-512, AVX2 + F16C) and bit-identical to the scalar functions
 * above on every level. */
HS_API void hs_convert_fp32_to_bf16(uint16_t *dst, const float *src, size_t n);
HS_API void hs_convert_bf16_to_fp32(float *dst, const uint16_t *src, size_t n);
HS_API void hs_convert_fp32_to_fp16(uint16_t *dst, const float *src, size_t n);
HS_API void hs_convert_fp16_to_fp32(float *dst, const uint16_t *src, size_t n);

/* ---------------------------------------------------------------- tensor */

#define HS_MAX_DIMS 4

typedef enum hs_device_kind {
    HS_DEVICE_CPU = 0,
    HS_DEVICE_NPU = 1
} hs_device_kind;

/* Where a tensor's data lives and where kernels on it run: the CPU, or one
 * simulated NPU together with the stream its work goes on. Opaque; NULL is
 * the CPU. An NPU's handles come from hs_npu_device (its default stream)
 * and hs_npu_stream_device (hyperspeed/npu.h) and live as long as the NPU
 * or the stream. There is no "current device": every kernel runs on the
 * device of its tensors, so two threads can drive two NPUs at once. */
typedef struct hs_device hs_device;

/* The kind of device d (NULL: HS_DEVICE_CPU). */
HS_API hs_device_kind hs_device_kind_of(const hs_device *d);
/* 1 when a and b are the same device: both the CPU, or the same NPU (on any
 * of its streams). */
HS_API int hs_device_same(const hs_device *a, const hs_device *b);

/* A dense, row-major, contiguous tensor of up to 4 dimensions.
 *
 * A tensor either owns its storage (made by hs_tensor_new, released by
 * hs_tensor_free) or is a view (hs_tensor_view*, or a struct filled by the
 * caller) that points into storage someone else owns. Views are plain
 * values: copying the struct is free and never allocates. */
typedef struct hs_tensor {
    void *data;                  /* first element */
    int64_t shape[HS_MAX_DIMS];  /* unused trailing dims are 1 */
    int ndim;                    /* 1..4 */
    hs_dtype dtype;
    hs_device *device;           /* NULL: the CPU */
    int owns;                    /* 1 when hs_tensor_free must release data */
} hs_tensor;

/* The kind of t's device. */
static inline hs_device_kind hs_tensor_device_kind(const hs_tensor *t) { return hs_device_kind_of(t->device); }

/* Number of elements (product of the shape). */
HS_API int64_t hs_tensor_numel(const hs_tensor *t);
/* Bytes of data: numel * dtype size. */
HS_API size_t hs_tensor_nbytes(const hs_tensor *t);

/* Allocates a zero-filled, 64-byte-aligned tensor on the CPU.
 * Errors: HS_ERR_INVALID_ARGUMENT (ndim outside 1..4, a size <= 0, a bad
 * dtype), HS_ERR_OUT_OF_MEMORY. Release with hs_tensor_free. */
HS_API hs_status hs_tensor_new(hs_tensor *t, hs_dtype dtype, int ndim, const int64_t *shape);

/* Releases owned storage (no-op on views and on zeroed structs). */
HS_API void hs_tensor_free(hs_tensor *t);

/* Makes a non-owning view of `data` with the given shape and dtype.
 * Errors: HS_ERR_INVALID_ARGUMENT as for hs_tensor_new, or data == NULL. */
HS_API hs_status hs_tensor_view(hs_tensor *t, void *data, hs_dtype dtype, int ndim, const int64_t *shape);

/* Convenience: an inline view without checks, for code that has already
 * validated its sizes (kernels' callers, model code). */
static inline hs_tensor hs_view2(void *data, hs_dtype dt, int64_t d0, int64_t d1)
{
    hs_tensor t = {data, {d0, d1, 1, 1}, 2, dt, NULL, 0};
    return t;
}
static inline hs_tensor hs_view1(void *data, hs_dtype dt, int64_t d0)
{
    hs_tensor t = {data, {d0, 1, 1, 1}, 1, dt, NULL, 0};
    return t;
}
static inline hs_tensor hs_view3(void *data, hs_dtype dt, int64_t d0, int64_t d1, int64_t d2)
{
    hs_tensor t = {data, {d0, d1, d2, 1}, 3, dt, NULL, 0};
    return t;
}
static inline hs_tensor hs_view4(void *data, hs_dtype dt, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    hs_tensor t = {data, {d0, d1, d2, d3}, 4, dt, NULL, 0};
    return t;
}

/* The view t placed on device d (NULL: the CPU). */
static inline hs_tensor hs_on(hs_tensor t, hs_device *d)
{
    t.device = d;
    return t;
}

/* ------------------------------------------------------------ allocation */

/* 64-byte-aligned host allocation (size rounded up to 64); NULL on failure
 * with HS_ERR_OUT_OF_MEMORY recorded. Release with hs_free (NULL: nothing). */
HS_API void *hs_alloc(size_t bytes);
HS_API void hs_free(void *p);

/* Bytes the library holds from hs_alloc now, and at most since the
 * process started or the last hs_host_mem_reset_peak (which sets the peak
 * to what is held now): the CPU device's memory (each allocation counted
 * rounded up to 64 bytes). Thread-safe. */
HS_API size_t hs_host_mem_used(void);
HS_API size_t hs_host_mem_peak(void);
HS_API void hs_host_mem_reset_peak(void);

/* ------------------------------------------------------------------- RNG */

/* Philox4x32-10 (Salmon et al., SC'11). The stream is a pure function of
 * (seed, tensor id, element index): element i of a logical tensor gets the
 * same value however the tensor is sharded, so a shard can be initialised
 * on its own and still equal the slice of the whole. */

/* One Philox4x32-10 block: 4 x 32-bit outputs for a 128-bit counter and a
 * 64-bit key. */
HS_API void hs_philox4x32(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

/* Uniform float in [0, 1) for element `index` of tensor `tensor_id`. */
HS_API float hs_rng_uniform(uint64_t seed, uint64_t tensor_id, uint64_t index);

/* Fills dst[0..n) with N(mean, std^2) values of elements
 * [first, first + n) of the logical tensor (seed, tensor_id)
 * (Box-Muller over Philox outputs). */
HS_API void hs_rng_normal(float *dst, size_t n, uint64_t seed, uint64_t tensor_id, uint64_t first, float mean,
                          float std);

/* Fills dst[0..n) with U[lo, hi) values of elements [first, first + n). */
HS_API void hs_rng_uniform_fill(float *dst, size_t n, uint64_t seed, uint64_t tensor_id, uint64_t first, float lo,
                                float hi);

/* ------------------------------------------------------------------- cpu */

/* Vector instruction levels the library's hot loops are compiled for: the
 * x86-64 psABI levels. Each level's code gives the same results (bit for
 * bit where docs/core.md says so; within rounding for the CPU kernels,
 * whose FMA contraction differs). */
typedef enum hs_isa {
    HS_ISA_BASELINE = 0, /* x86-64-v2: SSE4.2; 16-bit conversions scalar */
    HS_ISA_AVX2,         /* x86-64-v3: AVX2, FMA, F16C, BMI2 */
    HS_ISA_AVX512,       /* x86-64-v4: AVX-512 F, BW, CD, DQ, VL */
    HS_ISA_COUNT
} hs_isa;

/* The best level this CPU and OS run. */
HS_API hs_isa hs_cpu_isa_native(void);
/* The level the library's code uses: the native one, capped by the
 * environment variable HS_CPU_ISA ("avx512", "avx2" or "baseline", read on
 * first use; a level above the native one is lowered to it with a warning)
 * or by hs_cpu_set_isa. */
HS_API hs_isa hs_cpu_isa(void);
/* Caps the level for the whole process from now on. HS_ERR_INVALID_ARGUMENT
 * for a value that is not a level or is above hs_cpu_isa_native(). */
HS_API hs_status hs_cpu_set_isa(hs_isa max);
/* "baseline", "avx2", "avx512" ("invalid" for other values). */
HS_API const char *hs_isa_name(hs_isa isa);
/* The level named by one of hs_isa_name's strings; HS_ERR_NOT_FOUND else. */
HS_API hs_status hs_isa_parse(const char *name, hs_isa *out);
/* The CPU's brand string (cpuid), e.g. "AMD EPYC 9R14 96-Core Processor";
 * a static string. */
HS_API const char *hs_cpu_name(void);

/* ---------------------------------------------------------- threads/time */

/* Threads used by kernels: HS_NUM_THREADS if set, else the cores this
 * process may run on. */
HS_API int hs_num_threads(void);
/* Overrides the thread count for this process (n >= 1). */
HS_API hs_status hs_set_num_threads(int n);

/* Monotonic wall clock in seconds. */
HS_API double hs_time_now(void);

#ifdef __cplusplus
}
#endif
#endif

/* CPU bodies of the dense kernels (matmul, bias+GELU, LayerNorm, RMSNorm,
 * residual, embedding) and of the optimizer kernels. The entry points in
 * src/kernels/<family>.c validate their tensors and call these with raw
 * pointers and sizes they have already checked.
 *
 * Threading: every body runs OpenMP regions of hs_num_threads() threads.
 * Reductions over rows never use float atomics: either each thread owns a
 * slice of the output channels (results then do not depend on the thread
 * count at all) or per-thread partials are combined in thread order, so
 * two runs with the same thread count are bit-identical.
 */
#ifndef HS_KERNELS_CPU_DENSE_H
#define HS_KERNELS_CPU_DENSE_H

#include "hyperspeed/kernels.h"
#include "kernels/check.h"

#include <cblas.h>
#include <omp.h>

/* A grow-once buffer. Bodies keep one per thread (static _Thread_local), so
 * concurrent callers on different threads never share it and steady-state
 * calls do not allocate. It lives as long as its thread. */
typedef struct hs_scratch {
    void *p;
    size_t bytes;
} hs_scratch;

/* At least `bytes` of s; NULL (HS_ERR_OUT_OF_MEMORY recorded) on failure. */
static inline void *hs_scratch_get(hs_scratch *s, size_t bytes)
{
    if (bytes > s->bytes) {
        void *p = hs_alloc(bytes);
        if (!p)
            return NULL;
        hs_free(s->p);
        s->p = p;
        s->bytes = bytes;
    }
    return s->p;
}

/* Threads for a region over `elems` elements: one below 32K elements,
 * where waking the team costs more than the work. */
static inline int hs_cpu_threads(int64_t elems) { return elems < (1 << 15) ? 1 : hs_num_threads(); }

/* Channels [*c0, *c1) of C that thread t of nt owns, cut at multiples of 16
 * floats (a cache line) so threads do not write the same line. */
static inline void hs_cpu_channels(int64_t C, int t, int nt, int64_t *c0, int64_t *c1)
{
    int64_t lines = (C + 15) / 16;
    int64_t a = lines * t / nt * 16, b = lines * (t + 1) / nt * 16;
    *c0 = a < C ? a : C;
    *c1 = b < C ? b : C;
}

/* Entry-point check for element-wise ops that take any rank: t non-NULL,
 * fp32, on the CPU, with a valid rank (1..HS_MAX_DIMS). */
static inline hs_status hs_check_any_rank(const char *op, const char *arg, const hs_tensor *t)
{
    if (t && (t->ndim < 1 || t->ndim > HS_MAX_DIMS))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "%s: %s has rank %d, outside 1..%d", op, arg, t->ndim,
                        HS_MAX_DIMS);
    return hs_check_tensor(op, arg, t, HS_FP32, t ? t->ndim : 1, NULL);
}

/* c[M,N] = op(a)[M,K] @ op(b)[K,N] + beta c, row-major with leading
 * dimensions lda, ldb, ldc, computed by the OpenMP team of hs_num_threads()
 * threads, each running a single-threaded sgemm on a slice of c. Expects
 * OpenBLAS set to one thread, so that one thread pool does all the work. */
void hs_cpu_sgemm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int64_t M, int64_t N, int64_t K, const float *a,
                  int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* matmul (cpu/matmul.c). inp and w are float or uint16_t bf16 per dt. */
hs_status hs_cpu_matmul_forward(float *out, const void *inp, const void *w, const float *bias, int64_t N, int64_t C,
                                int64_t OC, hs_dtype dt);
hs_status hs_cpu_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const void *inp,
                                 const void *w, int64_t N, int64_t C, int64_t OC, hs_dtype dt);

/* bias + GELU (cpu/gelu.c); bias may be NULL. */
void hs_cpu_bias_gelu_forward(float *out, const float *x, const float *bias, int64_t N, int64_t C);
void hs_cpu_bias_gelu_backward(float *dx, float *dbias, const float *dout, const float *x, const float *bias,
                               int64_t N, int64_t C);

/* LayerNorm and RMSNorm (cpu/norm.c); mean/rstd outputs may be NULL. */
void hs_cpu_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                              const float *b, float eps, int64_t N, int64_t C);
hs_status hs_cpu_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                                    const float *w, const float *mean, const float *rstd, int64_t N, int64_t C);
void hs_cpu_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, float eps, int64_t N,
                            int64_t C);
hs_status hs_cpu_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                                  const float *rstd, int64_t N, int64_t C);

/* residual (cpu/residual.c); n elements, out may alias a or b. */
void hs_cpu_residual_forward(float *out, const float *a, const float *b, int64_t n);
void hs_cpu_residual_backward(float *da, float *db, const float *dout, int64_t n);

/* embedding (cpu/embedding.c); tokens already bounds-checked, wpe may be
 * NULL. wte holds the vocabulary's rows [v0, v0 + V); tokens outside them
 * give zero rows and no gradient (a vocab-parallel shard; v0 = 0 and V =
 * the vocabulary otherwise). */
void hs_cpu_embedding_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe, int64_t B,
                              int64_t T, int64_t C, int64_t V, int64_t v0);
void hs_cpu_embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens, int64_t B,
                               int64_t T, int64_t C, int64_t V, int64_t v0);

/* optimizer (cpu/optim.c); hp already validated. */
void hs_cpu_adamw_update(float *param, const float *grad, float *m, float *v, int64_t n, const hs_adamw_params *hp);
/* *sum = sum of x[i]^2 in double, in an order fixed by n alone. */
hs_status hs_cpu_sum_squares(const float *x, int64_t n, double *sum);
void hs_cpu_scale(float *x, int64_t n, float scale);

/* casts and fills (cpu/convert.c); dtypes already checked: cast is fp32 <-> bf16 / fp16, fill fp32, bf16 or fp16. */
void hs_cpu_cast(void *dst, hs_dtype dst_dt, const void *src, hs_dtype src_dt, int64_t n);
void hs_cpu_fill(void *t, hs_dtype dt, float value, int64_t n);

#endif

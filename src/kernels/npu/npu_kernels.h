/* NPU bodies of the kernels, run on the NPU and stream of device handle
 * `dev` (the handle of their tensors, never NULL here). The entry points
 * in src/kernels/<family>.c validate their tensors and call these with
 * device addresses and sizes they have already checked; each body launches
 * one or more kernels on the AI-core model (src/npu_sim/isa.h). Errors:
 * HS_ERR_DTYPE for dtypes the cube cannot take, and what the launch
 * returns. */
#ifndef HS_KERNELS_NPU_KERNELS_H
#define HS_KERNELS_NPU_KERNELS_H

#include "core/device.h"
#include "kernels/attention_call.h"
#include "hyperspeed/npu.h"

/* ---- transient workspace: what a kernel allocates for its duration ----
 * (the kernels allocate these sizes; the memory plan adds them up) */

/* A matmul backward's 16-bit copy of dout [N, OC]. */
static inline size_t hs_npu_matmul_bwd_workspace(int64_t N, int64_t OC, hs_dtype dt)
{
    return (size_t)(N * OC) * hs_dtype_size(dt);
}

/* A norm backward's per-block partial sums of dw (and db): blocks of the
 * vector launch over N rows, C each. */
size_t hs_npu_norm_bwd_workspace(hs_npu *d, int64_t N, int64_t C, int sums);

/* RoPE's angle tables (cos and sin, T x HD floats each). */
static inline size_t hs_npu_rope_workspace(int64_t T, int64_t HD) { return 2 * (size_t)(T * HD) * sizeof(float); }

/* The shapes of one rank's training step that its kernels' workspaces
 * depend on (per TP rank). */
typedef struct hs_npu_step_shapes {
    int64_t B, T, Ns;      /* micro-batch; Ns rows of the norms (T/tp per sequence under SP) */
    int64_t C, NH, NKV, HD; /* d_model; the rank's query and key/value heads, head size */
    int64_t max_oc;        /* the widest output of a matmul whose backward runs (the head's vocabulary, qkv, fc) */
    hs_dtype compute;
    int norm_sums;         /* 2: LayerNorm (dw, db), 1: RMSNorm */
    int rope;              /* 1: RoPE on q and k */
} hs_npu_step_shapes;

/* *bytes = the largest workspace one kernel of such a step allocates
 * (each frees its own before returning, so the largest is what the step
 * adds to its persistent memory at its peak), rounded to HBM's
 * allocation unit. Errors: hs_npu_attention_workspace's. */
hs_status hs_npu_step_workspace(hs_npu *npu, const hs_npu_step_shapes *s, size_t *bytes);

/* ---- matmul (src/kernels/npu/matmul.c) ---- */

/* One GEMM on the cube cores: C[M,N] = A[M,K] @ B[K,N] (+ epilogue).
 * A, B: fp16 or bf16 in GM, row-major with row strides lda / ldb. */
typedef struct hs_npu_gemm {
    const void *a;
    int64_t lda;
    int a_trans;       /* 1: GM holds A^T, [K, M] */
    const void *b;
    int64_t ldb;
    int b_trans;       /* 1: GM holds B^T, [N, K] (a weight [OC, C]) */
    void *c;
    int64_t ldc;
    hs_dtype c_dtype;  /* fp32, fp16 or bf16 (fixpipe converts) */
    hs_dtype dtype;    /* of A and B */
    int64_t m, n, k;
    const float *bias; /* [N] fp32 or NULL: through the bias table, or the epilogue with gelu */
    int gelu;          /* c = gelu(c + bias) on the vector cores (c fp32) */
    int accumulate;    /* c += A @ B (fixpipe atomic add; c fp32, no bias or gelu) */
    int single_buffer; /* 1: one L1 stage and one L0A/L0B buffer (no double buffering) */
} hs_npu_gemm;

/* Runs g as kernel `name` on device d, stream s (NULL: default). */
hs_status hs_npu_gemm_run(hs_npu *d, hs_npu_stream *s, const char *name, const hs_npu_gemm *g);

/* out[N,OC] = inp[N,C] @ w[OC,C]^T (+ bias[OC]); inp, w fp16 or bf16, out
 * fp32 (hs_matmul_forward on NPU tensors). */
hs_status hs_npu_matmul_forward(const hs_device *dev, float *out, const void *inp, const void *w, const float *bias, int64_t N, int64_t C,
                                int64_t OC, hs_dtype dt);
/* out = gelu(inp @ w^T + bias), the bias and GELU fused on the vector
 * cores (NPU only; no public op has this fusion). */
hs_status hs_npu_matmul_gelu_forward(const hs_device *dev, float *out, const void *inp, const void *w, const float *bias, int64_t N,
                                     int64_t C, int64_t OC, hs_dtype dt);
/* dinp[N,C] += dout @ w; dw[OC,C] += dout^T @ inp; dbias[OC] += sum_n dout
 * (hs_matmul_backward on NPU tensors; each of dinp, dw, dbias may be NULL).
 * The GEMMs take dout rounded to dt (src/kernels/npu/matmul_backward.c). */
hs_status hs_npu_matmul_backward(const hs_device *dev, float *dinp, float *dw, float *dbias, const float *dout, const void *inp,
                                 const void *w, int64_t N, int64_t C, int64_t OC, hs_dtype dt);

/* ---- vector ops (src/kernels/npu/{norm,gelu,swiglu,residual,optim,rope,
 * embedding,cross_entropy}.c): arguments as the CPU bodies' ---- */

hs_status hs_npu_layernorm_forward(const hs_device *dev, float *out, float *mean, float *rstd, const float *inp, const float *w,
                                   const float *b, float eps, int64_t N, int64_t C);
hs_status hs_npu_layernorm_backward(const hs_device *dev, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                                    const float *w, const float *mean, const float *rstd, int64_t N, int64_t C);
hs_status hs_npu_rmsnorm_forward(const hs_device *dev, float *out, float *rstd, const float *inp, const float *w, float eps, int64_t N,
                                 int64_t C);
hs_status hs_npu_rmsnorm_backward(const hs_device *dev, float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                                  const float *rstd, int64_t N, int64_t C);
hs_status hs_npu_bias_gelu_forward(const hs_device *dev, float *out, const float *x, const float *bias, int64_t N, int64_t C);
hs_status hs_npu_bias_gelu_backward(const hs_device *dev, float *dx, float *dbias, const float *dout, const float *x, const float *bias,
                                    int64_t N, int64_t C);
hs_status hs_npu_swiglu_forward(const hs_device *dev, float *out, const float *inp, int64_t N, int64_t F);
hs_status hs_npu_swiglu_backward(const hs_device *dev, float *dinp, const float *dout, const float *inp, int64_t N, int64_t F);
hs_status hs_npu_residual_forward(const hs_device *dev, float *out, const float *a, const float *b, int64_t n);
hs_status hs_npu_residual_backward(const hs_device *dev, float *da, float *db, const float *dout, int64_t n);
struct hs_adamw_params; /* hyperspeed/kernels.h */
hs_status hs_npu_adamw_update(const hs_device *dev, float *param, const float *grad, float *m, float *v, int64_t n,
                              const struct hs_adamw_params *hp);
/* *sum = sum over the tensors of sum x^2: fp32 on the device, the blocks'
 * partials added in double on the host. */
hs_status hs_npu_sum_squares(const hs_device *dev, const hs_tensor *x, int count, double *sum);
hs_status hs_npu_scale(const hs_device *dev, float *x, int64_t n, float scale);
/* x [B,T,H,HD], token t at position pos0 + t; inverse: the backward's
 * rotation by -angle; out may alias inp. */
hs_status hs_npu_rope(const hs_device *dev, float *out, const float *inp, int64_t B, int64_t T, int64_t H, int64_t HD,
                      int64_t n_rot, float theta, int64_t pos0, int inverse);
/* V: rows of wte (dwte), the vocabulary's rows [v0, v0 + V); token ids
 * minus v0 are clamped to [0, V) as addresses; shard: tokens outside the
 * rows give zero rows and no gradient (the CPU bodies' semantics). */
hs_status hs_npu_embedding_forward(const hs_device *dev, float *out, const int32_t *tokens, const float *wte, const float *wpe, int64_t B,
                                   int64_t T, int64_t C, int64_t V, int64_t v0, int shard);
hs_status hs_npu_embedding_backward(const hs_device *dev, float *dwte, float *dwpe, const float *dout, const int32_t *tokens, int64_t B,
                                    int64_t T, int64_t C, int64_t V, int64_t v0, int shard);
/* v0, shard: as the CPU bodies (kernels/cpu/seq.h). */
hs_status hs_npu_cross_entropy_forward(const hs_device *dev, float *out, float *lse, const float *logits, const int32_t *targets, int64_t N,
                                       int64_t V, int64_t v0, int shard);
/* dlogits may alias logits. */
hs_status hs_npu_cross_entropy_backward(const hs_device *dev, float *dlogits, const float *logits, const float *lse, const int32_t *targets,
                                        int64_t N, int64_t V, int64_t v0, int shard, float dloss);

/* ---- casts and fills (src/kernels/npu/convert.c) ---- */

/* dst[i] = src[i] converted (fp32 <-> bf16 / fp16, round to nearest even),
 * n elements (hs_cast on NPU tensors). */
hs_status hs_npu_cast(const hs_device *dev, void *dst, hs_dtype dst_dt, const void *src, hs_dtype src_dt, int64_t n);
/* t[i] = value rounded to dt (fp32, bf16 or fp16), n elements (hs_fill). */
hs_status hs_npu_fill(const hs_device *dev, void *t, hs_dtype dt, float value, int64_t n);

/* ---- flash attention (src/kernels/npu/attention.c): arguments as the CPU
 * bodies' (the call's qkv and kv [B,T,C+2KV], out [B,T,C], lse [B,NH,T];
 * the backward adds into dq's q columns and dkv's k|v columns). bf16 cube
 * operands, fp32 softmax and accumulation; HD <= 128 (else
 * HS_ERR_INVALID_ARGUMENT). ---- */
hs_status hs_npu_attention_forward(const hs_device *dev, float *out, float *lse, const hs_attention_call *a);
/* Bytes of the workspace the forward (*fwd) and the backward (*bwd) of
 * call c allocate on npu for the call's duration (its pointers unused):
 * the memory plan's figures. Errors: HS_ERR_INVALID_ARGUMENT (a head size
 * or shape the kernel does not take). */
hs_status hs_npu_attention_workspace(hs_npu *npu, const hs_attention_call *c, int64_t *fwd, int64_t *bwd);
hs_status hs_npu_attention_backward(const hs_device *dev, float *dq, float *dkv, const float *dout, const float *out,
                                    const float *lse, const hs_attention_call *a);

#endif

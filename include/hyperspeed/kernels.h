/* hyperspeed kernels: one entry point per fused op, forward and backward.
 *
 * Each entry point validates its tensors (shapes, dtypes, device) and
 * dispatches on the tensors' device to a body (src/kernels/cpu/ today,
 * src/kernels/npu/ with the NPU model). Shapes below use N for rows
 * (N = B*T for token-major activations), C for channels, OC for output
 * channels, V for vocabulary, NH for heads and HD for head size.
 *
 * Gradient convention (llm.c): backward functions ACCUMULATE (+=) into the
 * gradient tensors they are given, so parameter gradients sum over
 * micro-batches and a residual's gradient adds up from both branches.
 * Any gradient argument may be NULL: that gradient is not computed. The
 * two exceptions, which WRITE their output so it may alias the input, are
 * hs_cross_entropy_backward and hs_rope_backward.
 *
 * All tensors are fp32 unless said otherwise. Kernels never allocate in
 * the steady state; they use OpenMP with hs_num_threads() threads.
 * Errors: HS_ERR_INVALID_ARGUMENT (NULL required tensor, bad size),
 * HS_ERR_SHAPE_MISMATCH, HS_ERR_DTYPE, HS_ERR_DEVICE (mixed devices or a
 * device without a body for the op).
 */
#ifndef HYPERSPEED_KERNELS_H
#define HYPERSPEED_KERNELS_H

#include "hyperspeed/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- matmul: out[N,OC] = inp[N,C] @ w[OC,C]^T (+ bias[OC]) ----
 * inp and w are both fp32, or both bf16 (fp32 accumulation, fp32 out).
 * bias may be NULL. The big products go to OpenBLAS. */
HS_API hs_status hs_matmul_forward(hs_tensor *out, const hs_tensor *inp, const hs_tensor *w, const hs_tensor *bias);
/* dinp[N,C] += dout @ w; dw[OC,C] += dout^T @ inp; dbias[OC] += sum_n dout.
 * fp32; inp/w may be bf16 as in the forward (gradients stay fp32). */
HS_API hs_status hs_matmul_backward(hs_tensor *dinp, hs_tensor *dw, hs_tensor *dbias, const hs_tensor *dout,
                                    const hs_tensor *inp, const hs_tensor *w);

/* ---- bias + GELU (tanh approximation), fused ----
 * out[N,C] = gelu(x + bias), gelu(u) = 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))).
 * bias [C] may be NULL. */
HS_API hs_status hs_bias_gelu_forward(hs_tensor *out, const hs_tensor *x, const hs_tensor *bias);
/* dx += dout * gelu'(x + bias); dbias += sum_n of the same. */
HS_API hs_status hs_bias_gelu_backward(hs_tensor *dx, hs_tensor *dbias, const hs_tensor *dout, const hs_tensor *x,
                                       const hs_tensor *bias);

/* ---- LayerNorm over the last dim ----
 * out[N,C] = (inp - mean) * rstd * w + b, rstd = 1/sqrt(var + eps) (biased var).
 * mean[N] and rstd[N] are saved for the backward (either may be NULL when
 * no backward follows). w and b are required; eps must be finite, >= 0. */
HS_API hs_status hs_layernorm_forward(hs_tensor *out, hs_tensor *mean, hs_tensor *rstd, const hs_tensor *inp,
                                      const hs_tensor *w, const hs_tensor *b, float eps);
HS_API hs_status hs_layernorm_backward(hs_tensor *dinp, hs_tensor *dw, hs_tensor *db, const hs_tensor *dout,
                                       const hs_tensor *inp, const hs_tensor *w, const hs_tensor *mean,
                                       const hs_tensor *rstd);

/* ---- RMSNorm over the last dim ----
 * out[N,C] = inp * rstd * w, rstd = 1/sqrt(mean(inp^2) + eps); rstd[N] saved
 * (may be NULL when no backward follows). */
HS_API hs_status hs_rmsnorm_forward(hs_tensor *out, hs_tensor *rstd, const hs_tensor *inp, const hs_tensor *w,
                                    float eps);
HS_API hs_status hs_rmsnorm_backward(hs_tensor *dinp, hs_tensor *dw, const hs_tensor *dout, const hs_tensor *inp,
                                     const hs_tensor *w, const hs_tensor *rstd);

/* ---- causal self-attention, flash style, grouped-query ----
 * qkv[B,T,C+2KV] holds per token the queries [NH,HD], then the keys
 * [NKV,HD], then the values [NKV,HD]: C = NH*HD, KV = NKV*HD, n_kv_head
 * dividing n_head. Query head h attends with key/value head
 * h / (n_head / n_kv_head): n_kv_head = n_head is multi-head attention,
 * 1 < n_kv_head < n_head grouped-query (GQA), 1 multi-query (MQA).
 * out[B,T,C] = softmax(q k^T / sqrt(HD), causal) v per query head,
 * computed in key tiles with an online softmax: O(T) memory per head, never
 * a T x T matrix. lse[B,NH,T], the log-sum-exp of each query's scaled
 * scores, is saved for the backward; it is also what merges two partial
 * results over disjoint key ranges (out = (e^lse1 out1 + e^lse2 out2) /
 * (e^lse1 + e^lse2)). Errors: HS_ERR_INVALID_ARGUMENT (n_head or n_kv_head
 * < 1, n_kv_head not dividing n_head, qkv's last dim not a multiple of
 * n_head + 2 n_kv_head), HS_ERR_SHAPE_MISMATCH, HS_ERR_DTYPE, HS_ERR_DEVICE. */
HS_API hs_status hs_attention_forward(hs_tensor *out, hs_tensor *lse, const hs_tensor *qkv, int n_head, int n_kv_head);
/* dqkv[B,T,C+2KV] += gradient w.r.t. q, k and v (a key/value head's
 * gradient sums over the query heads that read it), recomputing the
 * probabilities tile by tile from q, k and lse (FlashAttention-2 backward).
 * dqkv may be NULL (nothing to do). */
HS_API hs_status hs_attention_backward(hs_tensor *dqkv, const hs_tensor *dout, const hs_tensor *qkv,
                                       const hs_tensor *out, const hs_tensor *lse, int n_head, int n_kv_head);

/* ---- attention over another block of the sequence (context parallelism) ----
 * The queries of qkv[B,T,C+2KV] attend to the keys and values of kv, a
 * block of the same sequences in the same layout (its k|v columns; another
 * rank's chunk, or qkv itself), by position: qkv's token t sits at
 * q_pos0 + t, kv's token s at kv_pos0 + s, and key s is visible to query t
 * when kv_pos0 + s <= q_pos0 + t. The blocks are those of context
 * parallelism, so kv is one of: the same positions (q_pos0 == kv_pos0:
 * causal within the block, as hs_attention_forward), wholly before the
 * queries (kv_pos0 + T - 1 <= q_pos0: every key visible, nothing masked),
 * or wholly after them (kv_pos0 > q_pos0 + T - 1: nothing visible, out 0
 * and lse -inf, which a merge weighs 0). out and lse as hs_attention_forward;
 * partial results over disjoint key blocks merge as
 *     lse = log(e^lse1 + e^lse2),  out = e^(lse1 - lse) out1 + e^(lse2 - lse) out2.
 * Errors: as hs_attention_forward, and HS_ERR_INVALID_ARGUMENT for kv not
 * shaped as qkv, a negative position, or a kv block that overlaps the
 * queries' positions in part (naming the three kinds it may be). */
HS_API hs_status hs_attention_forward_kv(hs_tensor *out, hs_tensor *lse, const hs_tensor *qkv, const hs_tensor *kv,
                                         int n_head, int n_kv_head, int64_t q_pos0, int64_t kv_pos0);
/* Its backward: dq[B,T,C+2KV] += the gradient w.r.t. qkv's q columns and
 * dkv[B,T,C+2KV] += the gradient w.r.t. kv's k|v columns (other columns
 * untouched; dq and dkv may be one tensor when kv is qkv). out and lse are
 * the whole attention's, merged over every key block (as ring attention's
 * backward takes them): each block's share of the gradient then adds up to
 * the whole's. A kv block wholly after the queries adds nothing. Errors: as
 * hs_attention_forward_kv, and those of the shapes of dq, dkv, dout, out
 * and lse. */
HS_API hs_status hs_attention_backward_kv(hs_tensor *dq, hs_tensor *dkv, const hs_tensor *dout, const hs_tensor *qkv,
                                          const hs_tensor *kv, const hs_tensor *out, const hs_tensor *lse, int n_head,
                                          int n_kv_head, int64_t q_pos0, int64_t kv_pos0);

/* ---- rotary position embedding (half-split / "rotate_half" pairing) ----
 * x[B,T,H,HD]: heads [0, n_rot_heads) are rotated, the rest copied. Token t
 * of each sequence sits at position p = pos0 + t (pos0 > 0: a slice of a
 * longer sequence, as a context-parallel rank or a decode step holds); for
 * head dim index i < HD/2, pair (i, i + HD/2) rotates by angle
 * p * theta^(-2i/HD). out may alias inp (in place). Errors:
 * HS_ERR_INVALID_ARGUMENT (odd HD, n_rot_heads outside [0, H], theta not
 * positive and finite, pos0 < 0), HS_ERR_SHAPE_MISMATCH, HS_ERR_DTYPE,
 * HS_ERR_DEVICE. */
HS_API hs_status hs_rope_forward(hs_tensor *out, const hs_tensor *inp, int n_rot_heads, float theta, int64_t pos0);
/* dinp = R^T dout (WRITES, may alias dout): the inverse rotation. */
HS_API hs_status hs_rope_backward(hs_tensor *dinp, const hs_tensor *dout, int n_rot_heads, float theta,
                                  int64_t pos0);

/* ---- SwiGLU ----
 * inp[N,2F] = [gate | up] per row; out[N,F] = silu(gate) * up,
 * silu(g) = g * sigmoid(g). */
HS_API hs_status hs_swiglu_forward(hs_tensor *out, const hs_tensor *inp);
HS_API hs_status hs_swiglu_backward(hs_tensor *dinp, const hs_tensor *dout, const hs_tensor *inp);

/* ---- token (+ position) embedding ----
 * tokens[B,T] int32 in [0,V); out[B,T,C] = wte[tokens] (+ wpe[t] when wpe,
 * [maxT,C] with maxT >= T, is given). A token outside [0,V) is an
 * HS_ERR_INVALID_ARGUMENT naming its position. */
HS_API hs_status hs_embedding_forward(hs_tensor *out, const hs_tensor *tokens, const hs_tensor *wte,
                                      const hs_tensor *wpe);
HS_API hs_status hs_embedding_backward(hs_tensor *dwte, hs_tensor *dwpe, const hs_tensor *dout,
                                       const hs_tensor *tokens);
/* Vocab-parallel embedding (Megatron's): wte[V,C] holds the vocabulary's
 * rows [vocab_start, vocab_start + V) on this rank of a tensor-parallel
 * group. out[b,t,:] = wte[tokens[b,t] - vocab_start,:] for the rank's own
 * tokens and 0 for the others' (+ wpe[t,:] when given: pass it on one rank
 * only); the group sums out (all-reduce). The backward adds dout rows into
 * dwte only for the rank's own tokens (and into dwpe when given). Tokens
 * must be >= 0 (any id of the vocabulary). Errors: as above, a negative
 * vocab_start. */
HS_API hs_status hs_embedding_shard_forward(hs_tensor *out, const hs_tensor *tokens, const hs_tensor *wte,
                                            const hs_tensor *wpe, int64_t vocab_start);
HS_API hs_status hs_embedding_shard_backward(hs_tensor *dwte, hs_tensor *dwpe, const hs_tensor *dout,
                                             const hs_tensor *tokens, int64_t vocab_start);

/* ---- fused softmax + cross-entropy ----
 * logits[N,V], targets[N] int32 (a target of -1 is ignored: loss 0, zero
 * gradient). losses[N] = lse_n - logits[n, target_n]; lse[N] saved. The
 * vocabulary is read in chunks with an online max/sum: one pass, no
 * probability buffer. */
HS_API hs_status hs_cross_entropy_forward(hs_tensor *losses, hs_tensor *lse, const hs_tensor *logits,
                                          const hs_tensor *targets);
/* dlogits[n,:] = dloss * (softmax(logits[n,:]) - onehot(target_n)), WRITTEN;
 * dlogits may alias logits (the gradient then replaces the logits, so no
 * second [N,V] buffer exists). Ignored rows get zeros. */
HS_API hs_status hs_cross_entropy_backward(hs_tensor *dlogits, const hs_tensor *logits, const hs_tensor *lse,
                                           const hs_tensor *targets, float dloss);

/* ---- vocab-parallel cross-entropy (Megatron's, no gather of the logits) ----
 * Each rank of a tensor-parallel group holds logits[N, V] = the columns
 * [vocab_start, vocab_start + V) of the vocabulary; targets[N] are
 * vocabulary ids (-1: ignored row). The shard forward writes
 *   lse[n] = log sum_v e^logits[n, v]  over its own columns,
 *   xt[n]  = logits[n, target_n - vocab_start] when the target is one of
 *            its columns, else 0;
 * the group then combines (two all-reduces of N floats):
 *   M = max_r lse_r,  LSE = M + log sum_r e^(lse_r - M),
 *   loss = LSE - sum_r xt_r  (0 for ignored rows),
 * and each shard's backward takes LSE and writes
 *   dlogits[n, v] = dloss * (e^(logits[n, v] - LSE) - [v + vocab_start == target_n]),
 * zeros for ignored rows (dlogits may alias logits). With vocab_start 0 and
 * the whole vocabulary these are the plain forward and backward. Errors:
 * as above, a negative vocab_start, a target below -1. */
HS_API hs_status hs_cross_entropy_shard_forward(hs_tensor *xt, hs_tensor *lse, const hs_tensor *logits,
                                                const hs_tensor *targets, int64_t vocab_start);
HS_API hs_status hs_cross_entropy_shard_backward(hs_tensor *dlogits, const hs_tensor *logits, const hs_tensor *lse,
                                                 const hs_tensor *targets, int64_t vocab_start, float dloss);

/* ---- residual add ---- out = a + b (out may alias a or b). */
HS_API hs_status hs_residual_forward(hs_tensor *out, const hs_tensor *a, const hs_tensor *b);
/* da += dout; db += dout. */
HS_API hs_status hs_residual_backward(hs_tensor *da, hs_tensor *db, const hs_tensor *dout);

/* ---- AdamW over one flat buffer (Loshchilov & Hutter, decoupled decay) ----
 * For each i, with g = grad[i] * grad_scale, bc1 = 1-b1^step, bc2 = 1-b2^step,
 * in torch.optim.AdamW's order of operations:
 *   p = p * (1 - lr * wd)                  (decay with the old p)
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p = p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
 * i.e. p -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * p_old).
 * step counts from 1. grad_scale folds gradient clipping (and loss-scale
 * removal) into the same pass. param, grad, m, v: same numel, fp32.
 * HS_ERR_INVALID_ARGUMENT for step < 1, lr < 0, a beta outside [0, 1),
 * eps <= 0, wd < 0, grad_scale < 0 or any non-finite value. */
typedef struct hs_adamw_params {
    float lr, beta1, beta2, eps, weight_decay;
    float grad_scale;
    int64_t step;
} hs_adamw_params;
/* Defaults: lr 3e-4, betas (0.9, 0.95), eps 1e-8, weight_decay 0.1, grad_scale 1, step 1. */
HS_API hs_adamw_params hs_adamw_params_default(void);
HS_API hs_status hs_adamw_update(hs_tensor *param, const hs_tensor *grad, hs_tensor *m, hs_tensor *v,
                                 const hs_adamw_params *p);

/* ---- global-norm gradient clipping ----
 * norm = sqrt(sum over all tensors of sum(g^2)), accumulated in double. */
HS_API hs_status hs_grad_norm(const hs_tensor *grads, int n_tensors, double *norm);
/* Scale that clipping to max_norm applies: min(1, max_norm / (norm + 1e-6));
 * 1 when max_norm <= 0 (clipping off); NaN for a NaN norm, as in PyTorch. */
HS_API float hs_clip_scale(double norm, float max_norm);
/* grads *= scale in place (for callers that clip without AdamW's fold). */
HS_API hs_status hs_scale_inplace(hs_tensor *t, float scale);

/* ---- CPU peak ----
 * Measured fp32 GEMM throughput of this process (the kernels' sgemm path,
 * OpenBLAS on each of hs_num_threads() threads, at 1024^3, best of a few
 * runs), in GFLOP/s;
 * measured on the first call and cached. MFU figures divide by it. */
HS_API double hs_cpu_sgemm_peak_gflops(void);
/* Name of the OpenBLAS kernel core in use ("Haswell", "SkylakeX", ...). */
HS_API const char *hs_blas_core_name(void);

/* ---- OpenBLAS core check (src/kernels/blas_core.c) ----
 * A DYNAMIC_ARCH OpenBLAS (Debian's) picks its kernel "core" from CPUID
 * when it is loaded. On a CPU it does not know it can fall back to a weak
 * one (0.3.21 runs its SSE3 "Prescott" kernels on some AVX-512 Xeons: 6x
 * slower sgemm), and OPENBLAS_CORETYPE in the environment can cap it
 * (Haswell = AVX2 on an AVX-512 machine). These functions judge the core
 * against the CPU, say so, and let a program restart itself with the best
 * core. docs/training.md, "OpenBLAS cores". */

/* What the check knows about a CPU. */
typedef enum hs_cpu_vendor { HS_CPU_VENDOR_OTHER = 0, HS_CPU_VENDOR_INTEL, HS_CPU_VENDOR_AMD } hs_cpu_vendor;
typedef struct hs_blas_cpu {
    hs_cpu_vendor vendor; /* cpuid vendor; Hygon counts as AMD */
    int family;           /* cpuid display family: base + extended (6: Intel Core and Xeon;
                             0x17 Zen 1-2, 0x19 Zen 3-4, 0x1A Zen 5) */
    hs_isa isa;           /* the CPU's own level (hs_cpu_isa_native), never the HS_CPU_ISA cap */
    int avx512_bf16;      /* 1: AVX512_BF16 (cpuid 7.1 EAX bit 5) with AVX-512 usable */
} hs_blas_cpu;

/* The widest vectors an OpenBLAS core's kernels use. */
typedef enum hs_blas_level {
    HS_BLAS_LEVEL_UNKNOWN = -1, /* a name this table does not know */
    HS_BLAS_LEVEL_SSE = 0,      /* Prescott, Nehalem, Core2, Atom, Opteron, Barcelona, ... */
    HS_BLAS_LEVEL_AVX,          /* Sandybridge, Bulldozer, Piledriver, Steamroller, Excavator */
    HS_BLAS_LEVEL_AVX2,         /* Haswell, Zen */
    HS_BLAS_LEVEL_AVX512        /* SkylakeX, Cooperlake, SapphireRapids */
} hs_blas_level;

/* A core judged against a CPU. */
typedef struct hs_blas_core_verdict {
    const char *current;         /* the core judged (the caller's string) */
    hs_blas_level current_level; /* its level; HS_BLAS_LEVEL_UNKNOWN for a name not in the table */
    const char *best;            /* best core for the CPU (static), or NULL when the CPU has no AVX2:
                                    then no core is recommended and nothing is weaker */
    hs_blas_level best_level;    /* best's level (HS_BLAS_LEVEL_UNKNOWN when best is NULL) */
    int full_width;              /* 1: an AVX-512 CPU executing 512-bit FMAs at full width (Intel,
                                    Zen 5); 0: in 256-bit halves (Zen 4) or no AVX-512 */
    int weaker;                  /* 1: current runs sgemm markedly slower than best on this CPU */
} hs_blas_core_verdict;

/* The level of an OpenBLAS core name (case-insensitive, as OPENBLAS_CORETYPE
 * reads it); HS_BLAS_LEVEL_UNKNOWN for NULL or a name not in the table. */
HS_API hs_blas_level hs_blas_core_level(const char *core);
/* "sse", "avx", "avx2", "avx512" or "unknown". */
HS_API const char *hs_blas_level_name(hs_blas_level level);
/* This machine's CPU, read with cpuid. */
HS_API void hs_blas_cpu_native(hs_blas_cpu *out);
/* Judges OpenBLAS core `core` on `cpu`. The best core: on an AVX-512 CPU
 * Cooperlake (with AVX512_BF16) or SkylakeX, on an AVX2 CPU Zen (AMD) or
 * Haswell, none below AVX2. `weaker` is set for an SSE or AVX core on an
 * AVX2 or AVX-512 CPU, and for an AVX2 core on an AVX-512 CPU with
 * full-width units; not for an AVX2 core on Zen 4 (family 0x19), where
 * OpenBLAS's AVX2 kernels run sgemm as fast as its AVX-512 ones, nor for a
 * name the table does not know. Pure: decides from its arguments only.
 * HS_ERR_INVALID_ARGUMENT for a NULL cpu or out, or cpu->isa not a level. */
HS_API hs_status hs_blas_core_judge(const hs_blas_cpu *cpu, const char *core, hs_blas_core_verdict *out);
/* hs_blas_core_judge of this process's running core (hs_blas_core_name) on
 * this CPU (hs_blas_cpu_native). */
HS_API void hs_blas_core_check(hs_blas_core_verdict *out);
/* Logs one warning (HS_LOG_WARN) when this process's OpenBLAS core is
 * weaker than the best one for this CPU, with the OPENBLAS_CORETYPE that
 * fixes it; only the first call in a process does anything. The library
 * calls it when it first decides its thread count (hs_num_threads), before
 * any kernel runs. */
HS_API void hs_blas_core_warn_once(void);
/* For main(argc, argv) of a program, before anything else (MPI_Init
 * included): when OPENBLAS_CORETYPE is unset and the running core is weaker
 * than the best one, sets OPENBLAS_CORETYPE to the best core and re-executes
 * the program (/proc/self/exe, same argv and pid) so that OpenBLAS, which
 * reads the variable only when it is loaded, starts with it. Returns without
 * doing anything when the core is right, when OPENBLAS_CORETYPE is set (the
 * user's choice; hs_blas_core_warn_once still warns), when
 * HS_BLAS_CORE_REEXEC is set (the restarted process, or "0" from a user who
 * wants none), or when this OpenBLAS is not a DYNAMIC_ARCH build. When the
 * exec fails it logs a warning and returns: the program runs on with the
 * core it has. Bundled programs (examples/, bench/, tools/) call it. */
HS_API void hs_blas_core_reexec(int argc, char **argv);

/* ---- dtype cast and fill ----
 * hs_cast: dst = src converted, fp32 -> bf16 / fp16 (round to nearest
 * even; NaN stays NaN, Inf stays Inf) or bf16 / fp16 -> fp32 (exact).
 * dst and src: same device, same numel (any ranks); no other dtype pair
 * (HS_ERR_DTYPE). The NPU body is a streaming vector kernel (vcast), bit
 * identical to the CPU's. Used for mixed precision: low-precision copies of
 * weights and activations for the matmuls. */
HS_API hs_status hs_cast(hs_tensor *dst, const hs_tensor *src);
/* t[i] = value rounded once to t's dtype (fp32, bf16 or fp16; others are
 * HS_ERR_DTYPE), on t's device: what a memset is on the host (the NPU body
 * duplicates the value into one UB tile and stores it over t). */
HS_API hs_status hs_fill(hs_tensor *t, float value);

#ifdef __cplusplus
}
#endif
#endif

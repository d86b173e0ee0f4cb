/* CPU bodies of the sequence kernels (causal attention, RoPE, SwiGLU,
 * softmax cross-entropy). The entry points in
 * src/kernels/<family>.c validate their tensors and call these with raw
 * pointers and sizes they have already checked.
 *
 * Threading: every body runs OpenMP regions of hs_num_threads() threads
 * with a static schedule, and every output element is produced by exactly
 * one work item in a fixed order (no float atomics, no cross-thread
 * reductions), so results are bit-identical from run to run.
 */
#ifndef HS_KERNELS_CPU_SEQ_H
#define HS_KERNELS_CPU_SEQ_H

#include "hyperspeed/core.h"
#include "kernels/attention_call.h"
#include "kernels/cpu/simd.h"

/* attention (cpu/attention.c) of call a (kernels/attention_call.h): out
 * [B,T,C], lse [B,NH,T]; the backward adds the queries' gradient into the
 * q columns of dq and the keys' and values' into the k|v columns of dkv
 * (both [B,T,C+2KV]; the same buffer for self-attention). NKV divides NH.
 * HS_ERR_OUT_OF_MEMORY if the first call's workspace cannot be had. */
hs_status hs_cpu_attention_forward(float *out, float *lse, const hs_attention_call *a);
hs_status hs_cpu_attention_backward(float *dq, float *dkv, const float *dout, const float *out, const float *lse,
                                    const hs_attention_call *a);

/* RoPE (cpu/rope.c): x [B,T,H,HD], token t at position pos0 + t; rotates
 * heads [0, n_rot) by +angle, or by -angle (R^T) when inverse is set;
 * copies the others. out may alias inp. */
void hs_cpu_rope(float *out, const float *inp, int64_t B, int64_t T, int64_t H, int64_t HD, int64_t n_rot, float theta,
                 int64_t pos0, int inverse);

/* SwiGLU (cpu/swiglu.c): inp [N,2F], out [N,F]; backward accumulates dinp. */
void hs_cpu_swiglu_forward(float *out, const float *inp, int64_t N, int64_t F);
void hs_cpu_swiglu_backward(float *dinp, const float *dout, const float *inp, int64_t N, int64_t F);

/* cross-entropy (cpu/cross_entropy.c): logits [N,V] are the vocabulary's
 * columns [v0, v0 + V) (v0 = 0: all of it), targets are vocabulary ids or
 * -1 (ignored row). The forward writes lse and out[n]: the loss (lse -
 * x[t - v0], 0 for ignored rows) or, with shard set, x[t - v0] when the
 * target is among the columns and else 0. The backward writes dlogits,
 * which may alias logits, subtracting dloss at the target's column when it
 * is among them. */
void hs_cpu_cross_entropy_forward(float *out, float *lse, const float *logits, const int32_t *targets, int64_t N,
                                  int64_t V, int64_t v0, int shard);
void hs_cpu_cross_entropy_backward(float *dlogits, const float *logits, const float *lse, const int32_t *targets,
                                   int64_t N, int64_t V, int64_t v0, float dloss);

#endif

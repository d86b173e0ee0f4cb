/* The operations a layer is written with (llm.c style: each names the
 * tensors it reads and writes): parameter views through the registry,
 * device-placed activation views, casts to the compute dtype, the norms,
 * the projections, and the gradient-ready reports (the tensor-parallel
 * regions' entry and exit are src/parallel/tp_region.h's). Shared by the sublayer kinds
 * (src/model/sublayer_*.c) and the model's embedding and head
 * (transformer.c); static inline, so each stays a plain call. */
#ifndef HS_MODEL_LAYER_OPS_H
#define HS_MODEL_LAYER_OPS_H

#include "core/try.h"
#include "hyperspeed/kernels.h"
#include "parallel/tp_comm.h"
#include "model/model_internal.h"

#include <string.h>

/* Views of a registry entry's values / gradients (NULL tensor pointer when
 * absent), as the kernels take them, on the model's device. */
typedef struct pview {
    hs_tensor t;
    int present;
} pview;

static inline pview param_view(const hs_model *m, int idx, hs_param_part part)
{
    pview v = {{0}, 0};
    if (idx < 0)
        return v;
    v.t = hs_registry_view(&m->reg, idx, part, m->dev);
    v.present = 1;
    return v;
}
#define PV(v) ((v).present ? &(v).t : NULL)

/* A parameter's fp32 values as the kernels read them (norm weights,
 * biases, embeddings): on the device even when the master is offloaded. */
static inline pview P(const hs_model *m, int idx)
{
    pview v = {{0}, 0};
    if (idx < 0)
        return v;
    v.t = hs_registry_kernel_view(&m->reg, idx, m->dev);
    v.present = 1;
    return v;
}
static inline pview G(const hs_model *m, int idx) { return param_view(m, idx, HS_PARAM_GRAD); }
/* A matmul weight in the compute dtype. */
static inline pview W(const hs_model *m, int idx) { return param_view(m, idx, HS_PARAM_COMPUTE); }

static inline hs_tensor mat(const hs_model *m, float *p, int64_t rows, int64_t cols)
{
    return hs_model_on_device(m, hs_view2(p, HS_FP32, rows, cols));
}
static inline hs_tensor vec(const hs_model *m, float *p, int64_t n) { return hs_model_on_device(m, hs_view1(p, HS_FP32, n)); }

/* p[0..n) = 0 on the model's device. */
static inline hs_status zero(const hs_model *m, float *p, int64_t n)
{
    hs_tensor t = vec(m, p, n);
    return hs_fill(&t, 0.0f);
}

/* dst (the compute-dtype twin of src, [n]) = src rounded; nothing for fp32
 * compute, where the twin is src itself. */
static inline hs_status to_compute(const hs_model *m, void *dst, float *src, int64_t n)
{
    if (m->compute == HS_FP32)
        return HS_OK;
    hs_tensor d = hs_model_on_device(m, hs_view1(dst, m->compute, n)), s = vec(m, src, n);
    return hs_cast(&d, &s);
}

/* dst[0..n) = src[0..n) on the model's device (the NPU: a zero fill and
 * an add, so the copy takes simulated time). */
static inline hs_status copy_rows(const hs_model *m, float *dst, const float *src, int64_t n)
{
    if (!m->npu) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        return HS_OK;
    }
    hs_tensor d = vec(m, dst, n), x = vec(m, (float *)src, n);
    HS_TRY(hs_fill(&d, 0.0f));
    return hs_residual_backward(&d, NULL, &x);
}

/* The tensor-parallel regions' entry and exit (f and g) are
 * src/parallel/tp_region.h's, on the model's m->tpr. A row-parallel bias
 * is added on TP rank 0 only (the sum counts it once). */
static inline int row_bias(const hs_model *m, int idx) { return m->tp_rank == 0 ? idx : -1; }

/* out = norm(inp): LayerNorm for GPT-2, RMSNorm for LLaMA. */
static inline hs_status norm_forward(const hs_model *m, float *out, float *mean, float *rstd, const float *inp, int w_idx,
                              int b_idx, int64_t N)
{
    const int64_t C = m->cfg.d_model;
    hs_tensor o = mat(m, out, N, C), x = mat(m, (float *)inp, N, C), r = vec(m, rstd, N);
    pview w = P(m, w_idx), b = P(m, b_idx);
    if (m->cfg.arch == HS_ARCH_GPT2) {
        hs_tensor mu = vec(m, mean, N);
        return hs_layernorm_forward(&o, &mu, &r, &x, PV(w), PV(b), m->cfg.norm_eps);
    }
    return hs_rmsnorm_forward(&o, &r, &x, PV(w), m->cfg.norm_eps);
}

/* dinp += dnorm/dinp^T dout; parameter gradients accumulate. */
static inline hs_status norm_backward(const hs_model *m, float *dinp, const float *dout, const float *inp, const float *mean,
                               const float *rstd, int w_idx, int b_idx, int64_t N)
{
    const int64_t C = m->cfg.d_model;
    hs_tensor di = mat(m, dinp, N, C), dy = mat(m, (float *)dout, N, C), x = mat(m, (float *)inp, N, C);
    hs_tensor r = vec(m, (float *)rstd, N);
    pview w = P(m, w_idx), dw = G(m, w_idx), db = G(m, b_idx);
    if (m->cfg.arch == HS_ARCH_GPT2) {
        hs_tensor mu = vec(m, (float *)mean, N);
        return hs_layernorm_backward(&di, PV(dw), PV(db), &dy, &x, PV(w), &mu, &r);
    }
    return hs_rmsnorm_backward(&di, PV(dw), &dy, &x, PV(w), &r);
}

/* out[N,OC] = inp[N,IC] W^T (+ b), inp and W in the compute dtype. */
static inline hs_status linear_forward(const hs_model *m, float *out, const void *inp, int w_idx, int b_idx, int64_t N)
{
    pview w = W(m, w_idx), b = P(m, b_idx);
    hs_tensor o = mat(m, out, N, w.t.shape[0]);
    hs_tensor x = hs_model_on_device(m, hs_view2((void *)inp, m->compute, N, w.t.shape[1]));
    return hs_matmul_forward(&o, &x, &w.t, PV(b));
}

/* dinp = dout W (written: dinp is zeroed first); dW, db accumulate in fp32. */
static inline hs_status linear_backward(const hs_model *m, float *dinp, const float *dout, const void *inp, int w_idx,
                                 int b_idx, int64_t N)
{
    pview w = W(m, w_idx), dw = G(m, w_idx), db = G(m, b_idx);
    const int64_t OC = w.t.shape[0], IC = w.t.shape[1];
    hs_tensor di = mat(m, dinp, N, IC), dy = mat(m, (float *)dout, N, OC);
    hs_tensor x = hs_model_on_device(m, hs_view2((void *)inp, m->compute, N, IC));
    HS_TRY(zero(m, dinp, N * IC));
    return hs_matmul_backward(&di, PV(dw), PV(db), &dy, &x, &w.t);
}

/* The backward finalises gradients from the end of the registry's order
 * down: those from registry entry idx's offset (idx < 0: 0) up are final
 * now. The block's HS_AFTER_BACKWARD hook call reports the range its
 * backward moved this frontier over. */
static inline hs_status grads_ready(hs_model *m, int idx)
{
    m->ready_end = idx >= 0 ? m->reg.entries[idx].offset : 0;
    return HS_OK;
}

/* ---- a pre-norm residual branch's two ends (src/model/sublayer_*.c) ---- */

/* a->in = Norm(x) Win^T (+ bias in_b, -1: none), through f. */
static inline hs_status branch_enter(hs_model *m, const sublayer_params *p, const sublayer_acts *a, const float *x,
                                     int in_b, int B, int T)
{
    const int64_t N = (int64_t)B * T;
    HS_TRY(norm_forward(m, a->ln, a->ln_mean, a->ln_rstd, x, p->norm_w, p->norm_b, hs_model_stream_rows(m, N)));
    HS_TRY(hs_tp_region_enter(&m->tpr, a->ln_c, a->ln, B, T));
    return linear_forward(m, a->in, a->ln_c, p->in_w, in_b, N);
}

/* a->res = x + core Wout^T (+ bout), through g; core is [N, width]. */
static inline hs_status branch_exit(hs_model *m, const sublayer_params *p, const sublayer_acts *a, const float *x,
                                    int64_t width, int B, int T)
{
    const int64_t N = (int64_t)B * T, Ns = hs_model_stream_rows(m, N), C = m->cfg.d_model;
    HS_TRY(to_compute(m, a->core_c, a->core, N * width));
    HS_TRY(linear_forward(m, hs_tp_region_row_out(&m->tpr, a->res), a->core_c, p->out_w, row_bias(m, p->out_b), N));
    HS_TRY(hs_tp_region_exit(&m->tpr, a->res, B, T));
    hs_tensor y = mat(m, a->res, Ns, C), xin = mat(m, (float *)x, Ns, C);
    return hs_residual_forward(&y, &xin, &y);
}

/* From g.dres = dL/dy: dcore = dy Wout (through g's backward); dWout, dbout
 * accumulate and are reported ready. */
static inline hs_status branch_exit_backward(hs_model *m, const sublayer_params *p, const sublayer_acts *a,
                                             float *dcore, int B, int T)
{
    float *dy;
    HS_TRY(hs_tp_region_exit_backward(&m->tpr, m->g.dres, B, T, &dy));
    HS_TRY(linear_backward(m, dcore, dy, a->core_c, p->out_w, p->out_b, (int64_t)B * T));
    return grads_ready(m, p->out_w);
}

/* From din = dL/d(a->in): dWin (and bias in_b, -1: none) accumulate,
 * dNorm through f's backward, and g.dres += Norm'(x)^T dNorm: dL/dx.
 * Reports the projection's and the norm's gradients ready. */
static inline hs_status branch_enter_backward(hs_model *m, const sublayer_params *p, const sublayer_acts *a,
                                              const float *x, const float *din, int in_b, int B, int T)
{
    const grad_scratch *g = &m->g;
    const int64_t N = (int64_t)B * T;
    HS_TRY(linear_backward(m, hs_tp_region_col_dinp(&m->tpr, g->dln), din, a->ln_c, p->in_w, in_b, N));
    HS_TRY(grads_ready(m, p->in_w));
    HS_TRY(hs_tp_region_enter_backward(&m->tpr, g->dln, B, T));
    HS_TRY(norm_backward(m, g->dres, g->dln, x, a->ln_mean, a->ln_rstd, p->norm_w, p->norm_b,
                         hs_model_stream_rows(m, N)));
    return grads_ready(m, p->norm_w);
}

#endif

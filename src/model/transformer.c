/* Forward and backward passes of the decoder-only transformer.
 *
 * GPT-2 block (pre-norm):            LLaMA block (pre-norm):
 *   a   = LN1(x)                       a   = RMSNorm1(x)
 *   qkv = a Wqkv^T + bqkv              qkv = RoPE(a Wqkv^T)      (on q and k)
 *   r1  = x + Attn(qkv) Wo^T + bo      r1  = x + Attn(qkv) Wo^T
 *   b   = LN2(r1)                      b   = RMSNorm2(r1)
 *   h   = GELU(b Wfc^T + bfc)          h   = SiLU(b Wg^T) * (b Wu^T)
 *   y   = r1 + h Wp^T + bp             y   = r1 + h Wp^T
 * Head: logits = Norm_f(y_L) Wout^T (Wout = wte for GPT-2), loss = mean CE.
 *
 * Backward runs the same list in reverse. The residual stream's gradient
 * dres passes through each block unchanged and the norms' backward adds
 * their branch's input gradient into it (kernels accumulate).
 *
 * Mixed precision: every matmul input (a, Attn(qkv), b, h, Norm_f(y_L))
 * is cast to the compute dtype just before its matmul and kept for the
 * backward, which multiplies with the same 16-bit operands; the weights
 * come from the model's compute-dtype copy. Everything else (norms,
 * attention, residuals, the loss and every gradient) runs in fp32.
 */
#include "core/try.h"
#include "hyperspeed/kernels.h"
#include "model/model_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Views of a registry entry's values / gradients (NULL tensor pointer when
 * absent), as the kernels take them, on the model's device. */
typedef struct pview {
    hs_tensor t;
    int present;
} pview;

static pview param_view(const hs_model *m, int idx, void *buf, hs_dtype dt)
{
    pview v = {{0}, 0};
    if (idx < 0 || !buf)
        return v;
    const hs_param_info *p = &m->params[idx];
    char *at = (char *)buf + p->offset * (int64_t)hs_dtype_size(dt);
    v.t = p->ndim == 1 ? hs_view1(at, dt, p->shape[0]) : hs_view2(at, dt, p->shape[0], p->shape[1]);
    v.t.device = m->device;
    v.present = 1;
    return v;
}
#define PV(v) ((v).present ? &(v).t : NULL)

static pview P(const hs_model *m, int idx) { return param_view(m, idx, m->param_buf, HS_FP32); }
static pview G(const hs_model *m, int idx) { return param_view(m, idx, m->grad_buf, HS_FP32); }
/* A matmul weight in the compute dtype. */
static pview W(const hs_model *m, int idx) { return param_view(m, idx, m->param_c, m->compute); }

static hs_tensor mat(const hs_model *m, float *p, int64_t rows, int64_t cols)
{
    return hs_model_on_device(m, hs_view2(p, HS_FP32, rows, cols));
}
static hs_tensor vec(const hs_model *m, float *p, int64_t n) { return hs_model_on_device(m, hs_view1(p, HS_FP32, n)); }

/* p[0..n) = 0 on the model's device. */
static hs_status zero(const hs_model *m, float *p, int64_t n)
{
    hs_tensor t = vec(m, p, n);
    return hs_fill(&t, 0.0f);
}

/* dst (the compute-dtype twin of src, [n]) = src rounded; nothing for fp32
 * compute, where the twin is src itself. */
static hs_status to_compute(const hs_model *m, void *dst, float *src, int64_t n)
{
    if (m->compute == HS_FP32)
        return HS_OK;
    hs_tensor d = hs_model_on_device(m, hs_view1(dst, m->compute, n)), s = vec(m, src, n);
    return hs_cast(&d, &s);
}

/* out = norm(inp): LayerNorm for GPT-2, RMSNorm for LLaMA. */
static hs_status norm_forward(const hs_model *m, float *out, float *mean, float *rstd, const float *inp, int w_idx,
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
static hs_status norm_backward(const hs_model *m, float *dinp, const float *dout, const float *inp, const float *mean,
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
static hs_status linear_forward(const hs_model *m, float *out, const void *inp, int w_idx, int b_idx, int64_t N)
{
    pview w = W(m, w_idx), b = P(m, b_idx);
    hs_tensor o = mat(m, out, N, w.t.shape[0]);
    hs_tensor x = hs_model_on_device(m, hs_view2((void *)inp, m->compute, N, w.t.shape[1]));
    return hs_matmul_forward(&o, &x, &w.t, PV(b));
}

/* dinp = dout W (written: dinp is zeroed first); dW, db accumulate in fp32. */
static hs_status linear_backward(const hs_model *m, float *dinp, const float *dout, const void *inp, int w_idx,
                                 int b_idx, int64_t N)
{
    pview w = W(m, w_idx), dw = G(m, w_idx), db = G(m, b_idx);
    const int64_t OC = w.t.shape[0], IC = w.t.shape[1];
    hs_tensor di = mat(m, dinp, N, IC), dy = mat(m, (float *)dout, N, OC);
    hs_tensor x = hs_model_on_device(m, hs_view2((void *)inp, m->compute, N, IC));
    HS_TRY(zero(m, dinp, N * IC));
    return hs_matmul_backward(&di, PV(dw), PV(db), &dy, &x, &w.t);
}

/* Tells the hook that gradients [begin, end) are final. */
static hs_status report_ready(const hs_model *m, int64_t begin, int64_t end)
{
    return m->grad_hook && end > begin ? m->grad_hook(m->grad_hook_ctx, begin, end) : HS_OK;
}

/* The backward finalises gradients from the end of the flat buffer down:
 * those from registry entry idx's offset (idx < 0: 0) up to what was
 * reported last are final now. */
static hs_status grads_ready(hs_model *m, int idx)
{
    const int64_t begin = idx >= 0 ? m->params[idx].offset : 0, end = m->ready_end;
    m->ready_end = begin;
    return report_ready(m, begin, end);
}

/* End of the embedding's gradients (wte, wpe) in the flat buffer: where
 * the first block's begin. */
static int64_t embedding_end(const hs_model *m) { return m->params[m->blocks[0].ln1_w].offset; }

static hs_status block_forward(hs_model *m, int l, const float *x, int B, int T)
{
    const hs_model_config *c = &m->cfg;
    const block_params *p = &m->blocks[l];
    const block_acts *a = &m->acts[l];
    const int64_t N = (int64_t)B * T, C = c->d_model, F = c->d_ff, NH = c->n_head;
    const int gpt2 = c->arch == HS_ARCH_GPT2;

    HS_TRY(norm_forward(m, a->ln1, a->ln1_mean, a->ln1_rstd, x, p->ln1_w, p->ln1_b, N));
    HS_TRY(to_compute(m, a->ln1_c, a->ln1, N * C));
    HS_TRY(linear_forward(m, a->qkv, a->ln1_c, p->qkv_w, p->qkv_b, N));
    hs_tensor qkv = hs_model_on_device(m, hs_view3(a->qkv, HS_FP32, B, T, 3 * C));
    if (!gpt2) {
        hs_tensor heads = hs_model_on_device(m, hs_view4(a->qkv, HS_FP32, B, T, 3 * NH, C / NH));
        HS_TRY(hs_rope_forward(&heads, &heads, (int)(2 * NH), c->rope_theta));
    }
    hs_tensor att = hs_model_on_device(m, hs_view3(a->att, HS_FP32, B, T, C));
    hs_tensor lse = hs_model_on_device(m, hs_view3(a->att_lse, HS_FP32, B, NH, T));
    HS_TRY(hs_attention_forward(&att, &lse, &qkv, (int)NH));
    HS_TRY(to_compute(m, a->att_c, a->att, N * C));
    HS_TRY(linear_forward(m, a->res1, a->att_c, p->proj_w, p->proj_b, N));
    hs_tensor r1 = mat(m, a->res1, N, C), xin = mat(m, (float *)x, N, C);
    HS_TRY(hs_residual_forward(&r1, &xin, &r1));

    HS_TRY(norm_forward(m, a->ln2, a->ln2_mean, a->ln2_rstd, a->res1, p->ln2_w, p->ln2_b, N));
    HS_TRY(to_compute(m, a->ln2_c, a->ln2, N * C));
    HS_TRY(linear_forward(m, a->fc, a->ln2_c, p->fc_w, -1, N)); /* GPT-2's fc bias is fused into the GELU */
    hs_tensor act = mat(m, a->fc_act, N, F);
    if (gpt2) {
        hs_tensor pre = mat(m, a->fc, N, F);
        pview b = P(m, p->fc_b);
        HS_TRY(hs_bias_gelu_forward(&act, &pre, PV(b)));
    } else {
        hs_tensor gu = mat(m, a->fc, N, 2 * F);
        HS_TRY(hs_swiglu_forward(&act, &gu));
    }
    HS_TRY(to_compute(m, a->fc_act_c, a->fc_act, N * F));
    HS_TRY(linear_forward(m, a->res2, a->fc_act_c, p->fc2_w, p->fc2_b, N));
    hs_tensor r2 = mat(m, a->res2, N, C);
    return hs_residual_forward(&r2, &r1, &r2);
}

/* On entry g->dres holds dL/dy for this block's output; on return dL/dx. */
static hs_status block_backward(hs_model *m, int l, const float *x, int B, int T)
{
    const hs_model_config *c = &m->cfg;
    const block_params *p = &m->blocks[l];
    const block_acts *a = &m->acts[l];
    const grad_scratch *g = &m->g;
    const int64_t N = (int64_t)B * T, C = c->d_model, F = c->d_ff, NH = c->n_head;
    const int gpt2 = c->arch == HS_ARCH_GPT2;

    /* MLP branch: y = r1 + mlp(ln2(r1)) */
    HS_TRY(linear_backward(m, g->dfc_act, g->dres, a->fc_act_c, p->fc2_w, p->fc2_b, N));
    HS_TRY(grads_ready(m, p->fc2_w));
    hs_tensor dact = mat(m, g->dfc_act, N, F);
    if (gpt2) {
        hs_tensor dpre = mat(m, g->dfc, N, F), pre = mat(m, a->fc, N, F);
        pview b = P(m, p->fc_b), db = G(m, p->fc_b);
        HS_TRY(zero(m, g->dfc, N * F));
        HS_TRY(hs_bias_gelu_backward(&dpre, PV(db), &dact, &pre, PV(b)));
    } else {
        hs_tensor dgu = mat(m, g->dfc, N, 2 * F), gu = mat(m, a->fc, N, 2 * F);
        HS_TRY(zero(m, g->dfc, N * 2 * F));
        HS_TRY(hs_swiglu_backward(&dgu, &dact, &gu));
    }
    HS_TRY(linear_backward(m, g->dln, g->dfc, a->ln2_c, p->fc_w, -1, N));
    HS_TRY(grads_ready(m, p->fc_w));
    HS_TRY(norm_backward(m, g->dres, g->dln, a->res1, a->ln2_mean, a->ln2_rstd, p->ln2_w, p->ln2_b, N));
    HS_TRY(grads_ready(m, p->ln2_w));

    /* attention branch: r1 = x + attn(ln1(x)) */
    HS_TRY(linear_backward(m, g->datt, g->dres, a->att_c, p->proj_w, p->proj_b, N));
    HS_TRY(grads_ready(m, p->proj_w));
    hs_tensor dqkv = hs_model_on_device(m, hs_view3(g->dqkv, HS_FP32, B, T, 3 * C));
    hs_tensor qkv = hs_model_on_device(m, hs_view3(a->qkv, HS_FP32, B, T, 3 * C));
    hs_tensor datt = hs_model_on_device(m, hs_view3(g->datt, HS_FP32, B, T, C));
    hs_tensor att = hs_model_on_device(m, hs_view3(a->att, HS_FP32, B, T, C));
    hs_tensor lse = hs_model_on_device(m, hs_view3(a->att_lse, HS_FP32, B, NH, T));
    HS_TRY(zero(m, g->dqkv, N * 3 * C));
    HS_TRY(hs_attention_backward(&dqkv, &datt, &qkv, &att, &lse, (int)NH));
    if (!gpt2) {
        hs_tensor dheads = hs_model_on_device(m, hs_view4(g->dqkv, HS_FP32, B, T, 3 * NH, C / NH));
        HS_TRY(hs_rope_backward(&dheads, &dheads, (int)(2 * NH), c->rope_theta));
    }
    HS_TRY(linear_backward(m, g->dln, g->dqkv, a->ln1_c, p->qkv_w, p->qkv_b, N));
    HS_TRY(grads_ready(m, p->qkv_w));
    HS_TRY(norm_backward(m, g->dres, g->dln, x, a->ln1_mean, a->ln1_rstd, p->ln1_w, p->ln1_b, N));
    return grads_ready(m, p->ln1_w);
}

static const float *block_input(const hs_model *m, int l) { return l == 0 ? m->encoded : m->acts[l - 1].res2; }

static int head_idx(const hs_model *m) { return m->lm_head >= 0 ? m->lm_head : m->wte; }

/* ids[0..n) (rows of T) lie in [lo, V): an NPU model checks tokens and
 * targets on the host before copying them, since an estimate-mode device
 * never sees their values. The message reads as the kernels' on the CPU. */
static hs_status check_ids(const char *what, const int32_t *ids, int64_t n, int T, int lo, int V)
{
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < lo || ids[i] >= V)
            return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_forward: %s[%lld][%lld] (position %lld) is %d, "
                            "outside [%d, %d)", what, (long long)(i / T), (long long)(i % T), (long long)i, ids[i],
                            lo, V);
    return HS_OK;
}

hs_status hs_model_forward(hs_model *m, const int32_t *tokens, const int32_t *targets, int B, int T, float *loss)
{
    if (!m || !tokens)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_forward: model and tokens must not be NULL");
    if (B < 1 || T < 1 || B > m->max_B || T > m->max_T)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "forward of B=%d T=%d exceeds the planned batch=%d seq=%d", B, T,
                        m->max_B, m->max_T);
    const hs_model_config *c = &m->cfg;
    const int64_t N = (int64_t)B * T, C = c->d_model, V = c->vocab_size;
    hs_model_use_device(m);
    m->B = B;
    m->T = T;
    m->tokens = tokens;
    m->have_targets = 0;
    m->logits_are_grads = 0;
    m->embedding_deferred = 0;
    if (m->npu) {
        HS_TRY(check_ids("tokens", tokens, N, T, 0, (int)V));
        if (targets)
            HS_TRY(check_ids("targets", targets, N, T, -1, (int)V));
        HS_TRY(hs_npu_memcpy_h2d(m->npu, hs_npu_current_stream(), m->tok_dev, tokens, (size_t)N * sizeof(int32_t)));
        m->tokens = m->tok_dev;
    }

    hs_tensor tok = hs_model_on_device(m, hs_view2((void *)m->tokens, HS_INT32, B, T));
    hs_tensor enc = hs_model_on_device(m, hs_view3(m->encoded, HS_FP32, B, T, C));
    pview wte = P(m, m->wte), wpe = P(m, m->wpe);
    HS_TRY(hs_embedding_forward(&enc, &tok, &wte.t, PV(wpe)));
    for (int l = 0; l < c->n_layer; l++)
        HS_TRY(block_forward(m, l, block_input(m, l), B, T));
    HS_TRY(norm_forward(m, m->lnf, m->lnf_mean, m->lnf_rstd, block_input(m, c->n_layer), m->lnf_w, m->lnf_b, N));
    HS_TRY(to_compute(m, m->lnf_c, m->lnf, N * C));
    HS_TRY(linear_forward(m, m->logits, m->lnf_c, head_idx(m), -1, N));
    if (!targets)
        return HS_OK;

    hs_tensor lg = mat(m, m->logits, N, V), tg = hs_model_on_device(m, hs_view1(m->targets, HS_INT32, N));
    hs_tensor ls = vec(m, m->losses, N), lse = vec(m, m->ce_lse, N);
    if (m->npu)
        HS_TRY(hs_npu_memcpy_h2d(m->npu, hs_npu_current_stream(), m->targets, targets, (size_t)N * sizeof(int32_t)));
    else
        memcpy(m->targets, targets, (size_t)N * sizeof(int32_t));
    HS_TRY(hs_cross_entropy_forward(&ls, &lse, &lg, &tg));
    /* The NPU's losses come back over PCIe; in estimate mode the copy takes
     * its time but brings no values. */
    const float *losses = m->losses;
    int have_values = 1;
    if (m->npu) {
        HS_TRY(hs_npu_memcpy_d2h(m->npu, hs_npu_current_stream(), m->stage, m->losses, (size_t)N * sizeof(float)));
        losses = m->stage;
        have_values = hs_npu_mode_of(m->npu) == HS_NPU_EXECUTE;
    }
    double sum = 0;
    int valid = 0;
    for (int64_t i = 0; i < N; i++) {
        if (targets[i] >= 0) {
            if (have_values)
                sum += losses[i];
            valid++;
        }
    }
    m->n_valid = valid;
    m->have_targets = 1;
    if (loss)
        *loss = !have_values ? NAN : valid ? (float)(sum / valid) : 0.0f;
    return HS_OK;
}

hs_status hs_model_backward(hs_model *m, float loss_scale)
{
    if (!m || !m->have_targets)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_backward needs a preceding forward with targets");
    const hs_model_config *c = &m->cfg;
    const int B = m->B, T = m->T;
    const int64_t N = (int64_t)B * T, C = c->d_model, V = c->vocab_size;
    hs_model_use_device(m);
    m->have_targets = 0; /* the logits become gradients below: a second backward would be wrong */
    m->logits_are_grads = 1;
    m->ready_end = m->n_params;

    hs_tensor lg = mat(m, m->logits, N, V), tg = hs_model_on_device(m, hs_view1(m->targets, HS_INT32, N));
    hs_tensor lse = vec(m, m->ce_lse, N);
    float dloss = m->n_valid ? loss_scale / (float)m->n_valid : 0.0f;
    HS_TRY(hs_cross_entropy_backward(&lg, &lg, &lse, &tg, dloss));
    HS_TRY(linear_backward(m, m->g.dln, m->logits, m->lnf_c, head_idx(m), -1, N));
    if (m->lm_head >= 0) /* untied: final now; a tied head's gradient is wte's, which the embedding adds to */
        HS_TRY(grads_ready(m, m->lm_head));
    if (m->defer_embedding) /* nothing but the deferred rows will write wte and wpe now */
        HS_TRY(report_ready(m, 0, embedding_end(m)));
    HS_TRY(zero(m, m->g.dres, N * C));
    HS_TRY(norm_backward(m, m->g.dres, m->g.dln, block_input(m, c->n_layer), m->lnf_mean, m->lnf_rstd, m->lnf_w,
                         m->lnf_b, N));
    HS_TRY(grads_ready(m, m->lnf_w));
    for (int l = c->n_layer - 1; l >= 0; l--)
        HS_TRY(block_backward(m, l, block_input(m, l), B, T));
    if (m->defer_embedding) {
        m->embedding_deferred = 1;
        return HS_OK;
    }
    HS_TRY(hs_model_embedding_backward(m, m->g.dres, m->tokens, B, T));
    return grads_ready(m, -1);
}

hs_status hs_model_embedding_grad_rows(hs_model *m, const float **grad, const int32_t **tokens, int *B, int *T)
{
    if (!m || !grad || !tokens || !B || !T)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_embedding_grad_rows: NULL argument");
    if (!m->embedding_deferred)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "the last backward did not defer its embedding gradient "
                        "(hs_model_defer_embedding_grad)");
    *grad = m->g.dres;
    *tokens = m->tokens;
    *B = m->B;
    *T = m->T;
    return HS_OK;
}

hs_status hs_model_embedding_backward(hs_model *m, const float *grad, const int32_t *tokens, int B, int T)
{
    if (!m || !grad || !tokens)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_embedding_backward: NULL argument");
    if (B < 1 || T < 1 || T > m->max_T)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "embedding backward of B=%d T=%d: B >= 1 and T in 1..%d", B, T,
                        m->max_T);
    hs_model_use_device(m);
    hs_tensor dres = hs_model_on_device(m, hs_view3((void *)grad, HS_FP32, B, T, m->cfg.d_model));
    hs_tensor tok = hs_model_on_device(m, hs_view2((void *)tokens, HS_INT32, B, T));
    pview dwte = G(m, m->wte), dwpe = G(m, m->wpe);
    return hs_embedding_backward(&dwte.t, PV(dwpe), &dres, &tok);
}

hs_status hs_model_logits(hs_model *m, hs_tensor *out)
{
    if (!m || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_logits: model and out must not be NULL");
    if (m->B == 0 || m->logits_are_grads)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "no logits: run a forward first (a backward overwrites them)");
    *out = hs_model_on_device(m, hs_view3(m->logits, HS_FP32, m->B, m->T, m->cfg.vocab_size));
    return HS_OK;
}

hs_status hs_model_activation(hs_model *m, const char *name, hs_tensor *out)
{
    if (!m || !name || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_activation: arguments must not be NULL");
    if (m->B == 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "no activations: run a forward first");
    const float *p = NULL;
    int l;
    char tail;
    if (strcmp(name, "embed") == 0)
        p = m->encoded;
    else if (strcmp(name, "lnf") == 0)
        p = m->lnf;
    else if (sscanf(name, "h.%d.out%c", &l, &tail) == 1 && l >= 0 && l < m->cfg.n_layer)
        p = m->acts[l].res2;
    if (!p)
        return hs_error(HS_ERR_NOT_FOUND, "unknown activation '%s' (embed, h.0.out .. h.%d.out, lnf)", name,
                        m->cfg.n_layer - 1);
    *out = hs_model_on_device(m, hs_view3((void *)p, HS_FP32, m->B, m->T, m->cfg.d_model));
    return HS_OK;
}

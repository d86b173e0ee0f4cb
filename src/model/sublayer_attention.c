/* The attention sublayer, a pre-norm residual branch:
 *   a   = Norm(x)                 (LayerNorm for GPT-2, RMSNorm for LLaMA)
 *   qkv = a Wqkv^T (+ bqkv)       (LLaMA: RoPE on the q and k heads)
 *   o   = Attn(qkv)               (causal; NH query heads on NKV key/value heads)
 *   y   = x + o Wo^T (+ bo)
 * Backward, with dy given:
 *   do = dy Wo;  dWo += dy^T o;  dqkv = Attn'(do);  (LLaMA: RoPE^T on dqkv)
 *   da = dqkv Wqkv;  dWqkv += dqkv^T a;  dx = dy + Norm'(da).
 * Wqkv is column-parallel (each rank its heads), Wo row-parallel. */
#include "model/layer_ops.h"
#include "model/sublayer.h"

static void specs(const hs_model_config *c, reg_spec spec[SUB_PARAMS], int has[SUB_PARAMS])
{
    const int64_t C = c->d_model, KV = (int64_t)hs_model_config_kv_heads(c) * (C / c->n_head), QKV = C + 2 * KV;
    const int gpt2 = c->arch == HS_ARCH_GPT2;
    const reg_spec s[SUB_PARAMS] = {{NULL, 1, C, 1, HS_SPLIT_NONE, 1, 1, 0, {0}},
                                    {NULL, 1, C, 1, HS_SPLIT_NONE, 1, 1, 0, {0}},
                                    {NULL, 2, QKV, C, HS_SPLIT_ROWS, 3, 0, 0, {C, KV, KV}},
                                    {NULL, 1, QKV, 1, HS_SPLIT_ROWS, 3, 0, 0, {C, KV, KV}},
                                    {NULL, 2, C, C, HS_SPLIT_COLS, 1, 0, 0, {0}},
                                    {NULL, 1, C, 1, HS_SPLIT_NONE, 1, 0, 0, {0}}};
    for (int k = 0; k < SUB_PARAMS; k++) {
        spec[k] = s[k];
        has[k] = gpt2 || k % 2 == 0 || (k == SUB_IN_B && c->qkv_bias);
    }
}

static void widths(const hs_model *m, int64_t *in, int64_t *core, int64_t *lse, int *keep_core)
{
    const hs_model_config *c = &m->cfg;
    const int64_t HD = c->d_model / c->n_head;
    *in = ((int64_t)c->n_head + 2 * (int64_t)hs_model_config_kv_heads(c)) * HD / m->tp;
    *core = c->d_model / m->tp;
    *lse = c->n_head / m->tp;
    *keep_core = 1;
}

/* o = Attn(qkv) with its log-sum-exp values, from the rotated qkv. */
static hs_status core(hs_model *m, const sublayer *s, const sublayer_acts *a, int B, int T)
{
    (void)s;
    const hs_model_config *c = &m->cfg;
    const int64_t Cl = c->d_model / m->tp, NH = c->n_head / m->tp, NKV = hs_model_config_kv_heads(c) / m->tp;
    const int64_t HD = c->d_model / c->n_head;
    hs_tensor qkv = hs_model_on_device(m, hs_view3(a->in, HS_FP32, B, T, (NH + 2 * NKV) * HD));
    hs_tensor att = hs_model_on_device(m, hs_view3(a->core, HS_FP32, B, T, Cl));
    hs_tensor lse = hs_model_on_device(m, hs_view3(a->lse, HS_FP32, B, NH, T));
    return hs_attention_forward(&att, &lse, &qkv, (int)NH, (int)NKV);
}

static hs_status forward(hs_model *m, const sublayer *s, const sublayer_acts *a, const float *x, int B, int T)
{
    const hs_model_config *c = &m->cfg;
    const int64_t NH = c->n_head / m->tp, NKV = hs_model_config_kv_heads(c) / m->tp, HD = c->d_model / c->n_head;

    HS_TRY(branch_enter(m, &s->p, a, x, s->p.in_b, B, T));
    if (c->arch != HS_ARCH_GPT2) { /* q and k heads rotate, v heads do not */
        hs_tensor heads = hs_model_on_device(m, hs_view4(a->in, HS_FP32, B, T, NH + 2 * NKV, HD));
        HS_TRY(hs_rope_forward(&heads, &heads, (int)(NH + NKV), c->rope_theta, 0));
    }
    HS_TRY(core(m, s, a, B, T));
    return branch_exit(m, &s->p, a, x, c->d_model / m->tp, B, T);
}

static hs_status backward(hs_model *m, const sublayer *s, const sublayer_acts *a, const float *x, int B, int T)
{
    const hs_model_config *c = &m->cfg;
    const grad_scratch *g = &m->g;
    const int64_t N = (int64_t)B * T, Cl = c->d_model / m->tp;
    const int64_t NH = c->n_head / m->tp, NKV = hs_model_config_kv_heads(c) / m->tp, HD = c->d_model / c->n_head;
    const int64_t QKV = (NH + 2 * NKV) * HD;

    HS_TRY(branch_exit_backward(m, &s->p, a, g->datt, B, T));
    hs_tensor dqkv = hs_model_on_device(m, hs_view3(g->dqkv, HS_FP32, B, T, QKV));
    hs_tensor qkv = hs_model_on_device(m, hs_view3(a->in, HS_FP32, B, T, QKV));
    hs_tensor datt = hs_model_on_device(m, hs_view3(g->datt, HS_FP32, B, T, Cl));
    hs_tensor att = hs_model_on_device(m, hs_view3(a->core, HS_FP32, B, T, Cl));
    hs_tensor lse = hs_model_on_device(m, hs_view3(a->lse, HS_FP32, B, NH, T));
    HS_TRY(zero(m, g->dqkv, N * QKV));
    HS_TRY(hs_attention_backward(&dqkv, &datt, &qkv, &att, &lse, (int)NH, (int)NKV));
    if (c->arch != HS_ARCH_GPT2) {
        hs_tensor dheads = hs_model_on_device(m, hs_view4(g->dqkv, HS_FP32, B, T, NH + 2 * NKV, HD));
        HS_TRY(hs_rope_backward(&dheads, &dheads, (int)(NH + NKV), c->rope_theta, 0));
    }
    return branch_enter_backward(m, &s->p, a, x, g->dqkv, s->p.in_b, B, T);
}

const sublayer_kind hs_sublayer_attention = {"attention", "attn", "qkv", "proj", specs, widths, forward, core, backward};

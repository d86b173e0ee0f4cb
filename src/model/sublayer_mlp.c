/* The dense MLP sublayer, a pre-norm residual branch:
 *   b = Norm(x)
 *   GPT-2: h = GELU(b Wfc^T + bfc)         LLaMA: h = SiLU(b Wg^T) * (b Wu^T)  (Wfc rows: gate | up)
 *   y = x + h Wp^T (+ bp)
 * Backward, with dy given:
 *   dh = dy Wp;  dWp += dy^T h;  dpre = GELU'(dh) or SwiGLU'(dh) (dbfc summed there);
 *   db = dpre Wfc;  dWfc += dpre^T b;  dx = dy + Norm'(db).
 * Wfc is column-parallel (each rank its share of the hidden width; gate
 * and up split alike), Wp row-parallel. GPT-2's fc bias is fused into the
 * GELU kernel. */
#include "model/layer_ops.h"
#include "model/sublayer.h"

static void specs(const hs_model_config *c, reg_spec spec[SUB_PARAMS], int has[SUB_PARAMS])
{
    const int64_t C = c->d_model, F = c->d_ff;
    const int gpt2 = c->arch == HS_ARCH_GPT2;
    const reg_spec s[SUB_PARAMS] = {{NULL, 1, C, 1, HS_SPLIT_NONE, 1, 1, 0, {0}},
                                    {NULL, 1, C, 1, HS_SPLIT_NONE, 1, 1, 0, {0}},
                                    {NULL, 2, gpt2 ? F : 2 * F, C, HS_SPLIT_ROWS, gpt2 ? 1 : 2, 0, 0, {0}},
                                    {NULL, 1, F, 1, HS_SPLIT_ROWS, 1, 0, 0, {0}},
                                    {NULL, 2, C, F, HS_SPLIT_COLS, 1, 0, 0, {0}},
                                    {NULL, 1, C, 1, HS_SPLIT_NONE, 1, 0, 0, {0}}};
    for (int k = 0; k < SUB_PARAMS; k++) {
        spec[k] = s[k];
        has[k] = gpt2 || k % 2 == 0;
    }
}

static void widths(const hs_model *m, int64_t *in, int64_t *core, int64_t *lse, int *keep_core)
{
    const int64_t Fl = m->cfg.d_ff / m->tp;
    *in = m->cfg.arch == HS_ARCH_GPT2 ? Fl : 2 * Fl;
    *core = Fl;
    *lse = 0;
    *keep_core = 0;
}

/* h = GELU(pre + bfc) or SwiGLU(gate | up), from the projection's output. */
static hs_status core(hs_model *m, const sublayer *s, const sublayer_acts *a, int B, int T)
{
    const int64_t N = (int64_t)B * T, F = m->cfg.d_ff / m->tp;
    hs_tensor act = mat(m, a->core, N, F);
    if (m->cfg.arch == HS_ARCH_GPT2) {
        hs_tensor pre = mat(m, a->in, N, F);
        pview b = P(m, s->p.in_b);
        return hs_bias_gelu_forward(&act, &pre, PV(b));
    }
    hs_tensor gu = mat(m, a->in, N, 2 * F);
    return hs_swiglu_forward(&act, &gu);
}

static hs_status forward(hs_model *m, const sublayer *s, const sublayer_acts *a, const float *x, int B, int T)
{
    HS_TRY(branch_enter(m, &s->p, a, x, -1, B, T)); /* GPT-2's fc bias is fused into the GELU */
    HS_TRY(core(m, s, a, B, T));
    return branch_exit(m, &s->p, a, x, m->cfg.d_ff / m->tp, B, T);
}

static hs_status backward(hs_model *m, const sublayer *s, const sublayer_acts *a, const float *x, int B, int T)
{
    const grad_scratch *g = &m->g;
    const int64_t N = (int64_t)B * T, F = m->cfg.d_ff / m->tp;

    HS_TRY(branch_exit_backward(m, &s->p, a, g->dfc_act, B, T));
    hs_tensor dact = mat(m, g->dfc_act, N, F);
    if (m->cfg.arch == HS_ARCH_GPT2) {
        hs_tensor dpre = mat(m, g->dfc, N, F), pre = mat(m, a->in, N, F);
        pview b = P(m, s->p.in_b), db = G(m, s->p.in_b);
        HS_TRY(zero(m, g->dfc, N * F));
        HS_TRY(hs_bias_gelu_backward(&dpre, PV(db), &dact, &pre, PV(b)));
    } else {
        hs_tensor dgu = mat(m, g->dfc, N, 2 * F), gu = mat(m, a->in, N, 2 * F);
        HS_TRY(zero(m, g->dfc, N * 2 * F));
        HS_TRY(hs_swiglu_backward(&dgu, &dact, &gu));
    }
    return branch_enter_backward(m, &s->p, a, x, g->dfc, -1, B, T);
}

const sublayer_kind hs_sublayer_mlp = {"mlp", "mlp", "fc", "proj", specs, widths, forward, core, backward};

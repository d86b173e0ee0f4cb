/* Forward and backward passes of the decoder-only transformer: the
 * embedding, the layers (each a list of sublayers, model_internal.h; the
 * attention and MLP sublayers' math is in src/model/sublayer_*.c), the
 * head and the loss.
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
 * Tensor parallelism (Megatron-LM; hs_model_shard): Wqkv and Wfc are
 * column-parallel (each rank its heads' q, k, v rows and its share of the
 * MLP width), Wo and Wp row-parallel: each rank's product is a partial
 * sum of the output, summed over the TP group (Megatron's g: all-reduce;
 * its backward the identity), and the gradient of a column-parallel
 * layer's input is summed likewise (Megatron's f: identity forward,
 * all-reduce backward). A row-parallel bias is added on TP rank 0 only, so
 * the sum counts it once. With sequence parallelism the norms and
 * residuals hold a slice of T/tp positions: f becomes an all-gather of the
 * slices (backward: reduce-scatter) and g a reduce-scatter (backward:
 * all-gather). The embedding and the head are vocab-parallel: the
 * embedding's partial rows leave through g, the head's logits stay split
 * and the cross-entropy combines each shard's log-sum-exp (no gathered
 * logits).
 *
 * Mixed precision: every matmul input (a, Attn(qkv), b, h, Norm_f(y_L))
 * is cast to the compute dtype just before its matmul and kept for the
 * backward, which multiplies with the same 16-bit operands; the weights
 * come from the model's compute-dtype copy. Everything else (norms,
 * attention, residuals, the loss and every gradient) runs in fp32.
 */
#include "core/try.h"
#include "hyperspeed/kernels.h"
#include "parallel/tp_comm.h"
#include "model/layer_ops.h"
#include "model/act_offload.h"
#include "model/model_internal.h"
#include "model/sublayer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* End of the embedding's gradients (wte, wpe) in the flat buffer: where
 * the first block's begin. */
static int64_t embedding_end(const hs_model *m) { return m->reg.entries[m->layers[0].sub[0].p.norm_w].offset; }

/* The registry range of block `block`'s parameters: the embedding's, a
 * layer's, or the head's to the end of the registry (with a last stage's
 * copy of a tied wte at its start). */
static void block_params(const hs_model *m, int block, int64_t *begin, int64_t *end)
{
    const int64_t head = m->lnf_w >= 0 ? m->reg.entries[m->lnf_w].offset : m->reg.numel;
    if (block == HS_LAYER_EMBEDDING) {
        *begin = 0;
        *end = embedding_end(m);
    } else if (block == HS_LAYER_HEAD) {
        *begin = m->wte >= 0 && !m->has_embedding ? 0 : head;
        *end = m->reg.numel;
    } else {
        const int l = block - m->first_layer;
        *begin = m->reg.entries[m->layers[l].sub[0].p.norm_w].offset;
        *end = l + 1 < m->n_layer ? m->reg.entries[m->layers[l + 1].sub[0].p.norm_w].offset : head;
    }
}

/* Calls the hooks for event ev of block `block` (hs_layer_info.layer), with the
 * gradient range [begin, end) after a backward, the block's parameters'
 * range before a forward. */
static hs_status emit(hs_model *m, hs_layer_event ev, int block, int64_t begin, int64_t end)
{
    hs_layer_info info = {ev, block, begin, end, 0, 0};
    if (ev == HS_BEFORE_FORWARD)
        block_params(m, block, &info.param_begin, &info.param_end);
    for (int i = 0; i < m->n_hooks; i++)
        HS_TRY(m->hooks[i].fn(m->hooks[i].ctx, m, &info));
    return HS_OK;
}

/* After block `block`'s backward moved the gradient frontier down from hi. */
static hs_status after_backward(hs_model *m, int block, int64_t hi)
{
    return emit(m, HS_AFTER_BACKWARD, block, m->ready_end, hi);
}

/* Layer l of the chunk: its sublayers in order, each reading the previous
 * one's output. */
static hs_status layer_forward(hs_model *m, int l, const layer_acts *a, const float *x, int B, int T)
{
    const layer *ly = &m->layers[l];
    for (int k = 0; k < ly->n_sub; k++) {
        HS_TRY(ly->sub[k].kind->forward(m, &ly->sub[k], &a->sub[k], x, B, T));
        x = a->sub[k].res;
    }
    return HS_OK;
}

/* On entry g.dres holds dL/dy for layer l's output; on return dL/dx.
 * A layer that recomputes first rebuilds what its forward did not keep
 * (model.h, hs_recompute) into the recompute scratch: with FULL the whole
 * forward from its kept input x (the output too, into the scratch), with SELECTIVE each sublayer's core from
 * its kept projection (and the core's 16-bit twin), just before that
 * sublayer's backward. The kernels and their inputs are the forward's, so
 * the rebuilt values are the same bits. */
static hs_status layer_backward(hs_model *m, int l, const float *x, int B, int T)
{
    const layer *ly = &m->layers[l];
    const layer_acts *a = &m->cur->acts[l];
    const hs_recompute rc = hs_model_layer_recompute(m, l);
    if (rc == HS_RECOMPUTE_FULL) { /* the kept output is not rewritten: a send may still read it */
        layer_acts r = *a;
        r.sub[ly->n_sub - 1].res = m->rc.sub[ly->n_sub - 1].res;
        HS_TRY(layer_forward(m, l, &r, x, B, T));
    }
    for (int k = ly->n_sub - 1; k >= 0; k--) {
        const sublayer *s = &ly->sub[k];
        if (rc == HS_RECOMPUTE_SELECTIVE) {
            int64_t in, core, lse;
            int keep;
            s->kind->widths(m, &in, &core, &lse, &keep);
            HS_TRY(s->kind->core(m, s, &a->sub[k], B, T));
            HS_TRY(to_compute(m, a->sub[k].core_c, a->sub[k].core, (int64_t)B * T * core));
        }
        HS_TRY(s->kind->backward(m, s, &a->sub[k], k ? a->sub[k - 1].res : x, B, T));
    }
    return HS_OK;
}

/* The output of layer l (the chunk's l-th). */
static const float *layer_output(const hs_model *m, const act_set *s, int l)
{
    return s->acts[l].sub[m->layers[l].n_sub - 1].res;
}

static const float *block_input(const hs_model *m, int l)
{
    return l == 0 ? m->cur->encoded : layer_output(m, m->cur, l - 1);
}

static int head_idx(const hs_model *m) { return m->lm_head >= 0 ? m->lm_head : m->wte; }

/* The head's weight (values in the compute dtype, or gradients): the rows
 * of the shard's real vocabulary ids. */
static hs_tensor head_weight(const hs_model *m, int grads)
{
    pview w = grads ? G(m, head_idx(m)) : W(m, head_idx(m));
    w.t.shape[0] = m->head_vocab;
    return w.t;
}

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

/* encoded = wte[tokens] (+ wpe): the vocab-parallel shards' rows summed
 * over the group (g) with tensor parallelism, positions added on rank 0. */
static hs_status embed(hs_model *m, const int32_t *tokens, int B, int T)
{
    act_set *s = m->cur;
    const int64_t N = (int64_t)B * T, C = m->cfg.d_model;
    if (m->npu) {
        HS_TRY(check_ids("tokens", tokens, N, T, 0, m->cfg.vocab_size));
        HS_TRY(hs_npu_memcpy_h2d(m->npu, hs_device_stream(m->dev), s->tok_dev, tokens, (size_t)N * sizeof(int32_t)));
        tokens = s->tok_dev;
    }
    s->tokens = tokens;
    hs_tensor tok = hs_model_on_device(m, hs_view2((void *)tokens, HS_INT32, B, T));
    hs_tensor out = hs_model_on_device(m, hs_view3(hs_tp_region_row_out(&m->tpr, s->encoded), HS_FP32, B, T, C));
    pview wte = P(m, m->wte), wpe = P(m, m->wpe);
    if (m->tp == 1)
        return hs_embedding_forward(&out, &tok, &wte.t, PV(wpe));
    pview pos = P(m, m->tp_rank == 0 ? m->wpe : -1);
    HS_TRY(hs_embedding_shard_forward(&out, &tok, &wte.t, PV(pos), m->vocab_start));
    return hs_tp_region_exit(&m->tpr, s->encoded, B, T);
}

/* The vocab-parallel cross-entropy's combination over the TP group
 * (docs/kernels.md): each rank's shard forward left its columns'
 * log-sum-exp in ce_lse and x[target] in ce_comb[N..2N); then
 * M = max_r lse_r, LSE = M + log sum_r e^(lse_r - M) (back into ce_lse for
 * the backward) and loss = LSE - sum_r xt_r (0 for ignored rows). The
 * element-wise steps run on the host over the values (the execute-mode
 * NPU's HBM is host memory; estimate mode has none and takes only the
 * all-reduces' time). targets: the host's. */
static hs_status ce_combine(hs_model *m, const int32_t *targets, int64_t N)
{
    act_set *s = m->cur;
    float *lse = s->ce_lse, *M = s->losses, *sum = m->ce_comb, *xt = m->ce_comb + N;
    const int values = !m->npu || hs_npu_mode_of(m->npu) == HS_NPU_EXECUTE;
    if (values)
        memcpy(M, lse, (size_t)N * sizeof(float));
    HS_TRY(hs_tp_allreduce(m->shard.tp_comm, m->npu, M, N, HS_REDUCE_MAX));
    for (int64_t i = 0; values && i < N; i++)
        sum[i] = expf(lse[i] - M[i]);
    HS_TRY(hs_tp_allreduce(m->shard.tp_comm, m->npu, sum, 2 * N, HS_REDUCE_SUM));
    for (int64_t i = 0; values && i < N; i++) {
        lse[i] = M[i] + logf(sum[i]);
        M[i] = targets[i] >= 0 ? lse[i] - xt[i] : 0.0f;
    }
    return HS_OK;
}

/* The head: logits = Norm_f(x) W^T over the shard's vocabulary, and with
 * targets the per-position losses, their mean in *loss. */
static hs_status head_forward(hs_model *m, const int32_t *targets, int B, int T, float *loss)
{
    act_set *s = m->cur;
    const int64_t N = (int64_t)B * T, Ns = hs_model_stream_rows(m, N), C = m->cfg.d_model, Vh = m->head_vocab;
    HS_TRY(norm_forward(m, s->lnf, s->lnf_mean, s->lnf_rstd, block_input(m, m->n_layer), m->lnf_w, m->lnf_b, Ns));
    HS_TRY(hs_tp_region_enter(&m->tpr, s->lnf_c, s->lnf, B, T));
    hs_tensor lg = mat(m, s->logits, N, Vh), w = head_weight(m, 0);
    hs_tensor x = hs_model_on_device(m, hs_view2(s->lnf_c, m->compute, N, C));
    HS_TRY(hs_matmul_forward(&lg, &x, &w, NULL));
    if (!targets)
        return HS_OK;

    if (m->npu) {
        HS_TRY(check_ids("targets", targets, N, T, -1, m->cfg.vocab_size));
        HS_TRY(hs_npu_memcpy_h2d(m->npu, hs_device_stream(m->dev), s->targets, targets, (size_t)N * sizeof(int32_t)));
    } else {
        memcpy(s->targets, targets, (size_t)N * sizeof(int32_t));
    }
    hs_tensor tg = hs_model_on_device(m, hs_view1(s->targets, HS_INT32, N));
    hs_tensor ls = vec(m, s->losses, N), lse = vec(m, s->ce_lse, N);
    if (m->tp == 1) {
        HS_TRY(hs_cross_entropy_forward(&ls, &lse, &lg, &tg));
    } else {
        hs_tensor xt = vec(m, m->ce_comb + N, N);
        HS_TRY(hs_cross_entropy_shard_forward(&xt, &lse, &lg, &tg, m->vocab_start));
        HS_TRY(ce_combine(m, targets, N));
    }
    /* The NPU's losses come back over PCIe; in estimate mode the copy takes
     * its time but brings no values. */
    const float *losses = s->losses;
    int have_values = 1;
    if (m->npu) {
        HS_TRY(hs_npu_memcpy_d2h(m->npu, hs_device_stream(m->dev), m->stage, s->losses, (size_t)N * sizeof(float)));
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
    s->n_valid = valid;
    s->have_targets = 1;
    if (loss)
        *loss = !have_values ? NAN : valid ? (float)(sum / valid) : 0.0f;
    return HS_OK;
}

hs_status hs_model_forward_stage(hs_model *m, const int32_t *tokens, const float *input, const int32_t *targets,
                                 int B, int T, float *loss)
{
    if (!m)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_forward: model is NULL");
    if (m->has_embedding && !tokens)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_forward: the chunk with the embedding needs tokens");
    if (B < 1 || T < 1 || B > m->max_B || T > m->max_T)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "forward of B=%d T=%d exceeds the planned batch=%d seq=%d", B, T,
                        m->max_B, m->max_T);
    if (m->sp && T % m->tp != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "sequence parallelism: T=%d is not a multiple of tp=%d (each rank holds T / tp positions)", T,
                        m->tp);
    if (m->tp > 1 && !m->shard.tp_comm)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "a tp=%d shard runs with its TP group: shard.tp_comm is NULL",
                        m->tp);
    act_set *s = m->cur;
    s->B = B;
    s->T = T;
    s->have_targets = 0;
    s->logits_are_grads = 0;
    s->embedding_deferred = 0;
    if (m->has_embedding) {
        HS_TRY(emit(m, HS_BEFORE_FORWARD, HS_LAYER_EMBEDDING, 0, 0));
        HS_TRY(embed(m, tokens, B, T));
        HS_TRY(emit(m, HS_AFTER_FORWARD, HS_LAYER_EMBEDDING, 0, 0));
    } else if (input) {
        HS_TRY(copy_rows(m, s->encoded, input, hs_model_boundary_numel(m, B, T)));
    }
    for (int l = 0; l < m->n_layer; l++) {
        HS_TRY(emit(m, HS_BEFORE_FORWARD, m->first_layer + l, 0, 0));
        HS_TRY(hs_act_before_forward(m, l));
        HS_TRY(layer_forward(m, l, &s->acts[l], block_input(m, l), B, T));
        HS_TRY(hs_act_after_forward(m, l));
        HS_TRY(emit(m, HS_AFTER_FORWARD, m->first_layer + l, 0, 0));
    }
    if (!m->has_head)
        return HS_OK;
    HS_TRY(emit(m, HS_BEFORE_FORWARD, HS_LAYER_HEAD, 0, 0));
    HS_TRY(head_forward(m, targets, B, T, loss));
    return emit(m, HS_AFTER_FORWARD, HS_LAYER_HEAD, 0, 0);
}

hs_status hs_model_forward(hs_model *m, const int32_t *tokens, const int32_t *targets, int B, int T, float *loss)
{
    if (!m || !tokens)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_forward: model and tokens must not be NULL");
    return hs_model_forward_stage(m, tokens, NULL, targets, B, T, loss);
}

/* The head's backward: from the loss (scaled) to dres = dL/d(last layer's
 * output) [Ns,C]. */
static hs_status head_backward(hs_model *m, float loss_scale)
{
    act_set *s = m->cur;
    const int B = s->B, T = s->T;
    const int64_t N = (int64_t)B * T, Ns = hs_model_stream_rows(m, N), C = m->cfg.d_model, Vh = m->head_vocab;
    s->have_targets = 0; /* the logits become gradients below: a second backward would be wrong */
    s->logits_are_grads = 1;
    hs_tensor lg = mat(m, s->logits, N, Vh), tg = hs_model_on_device(m, hs_view1(s->targets, HS_INT32, N));
    hs_tensor lse = vec(m, s->ce_lse, N);
    float dloss = s->n_valid ? loss_scale / (float)s->n_valid : 0.0f;
    if (m->tp == 1)
        HS_TRY(hs_cross_entropy_backward(&lg, &lg, &lse, &tg, dloss));
    else
        HS_TRY(hs_cross_entropy_shard_backward(&lg, &lg, &lse, &tg, m->vocab_start, dloss));
    float *dx = hs_tp_region_col_dinp(&m->tpr, m->g.dln);
    hs_tensor di = mat(m, dx, N, C), w = head_weight(m, 0), dw = head_weight(m, 1);
    hs_tensor x = hs_model_on_device(m, hs_view2(s->lnf_c, m->compute, N, C));
    HS_TRY(zero(m, dx, N * C));
    HS_TRY(hs_matmul_backward(&di, &dw, NULL, &lg, &x, &w));
    HS_TRY(hs_tp_region_enter_backward(&m->tpr, m->g.dln, B, T));
    if (m->lm_head >= 0) /* untied: final now; a tied head's gradient is wte's, which the embedding adds to */
        HS_TRY(grads_ready(m, m->lm_head));
    HS_TRY(zero(m, m->g.dres, Ns * C));
    HS_TRY(norm_backward(m, m->g.dres, m->g.dln, block_input(m, m->n_layer), s->lnf_mean, s->lnf_rstd, m->lnf_w,
                         m->lnf_b, Ns));
    return grads_ready(m, m->lnf_w);
}

/* The embedding's backward from dres: the whole table's rows (tp = 1), or
 * the shard's rows of the whole sequences' gradient (f's backward under
 * sequence parallelism gathers it first); wpe's gradient on every rank. */
static hs_status embedding_backward(hs_model *m)
{
    act_set *s = m->cur;
    if (m->tp == 1)
        return hs_model_embedding_backward(m, m->g.dres, s->tokens, s->B, s->T);
    float *dy;
    HS_TRY(hs_tp_region_exit_backward(&m->tpr, m->g.dres, s->B, s->T, &dy));
    return hs_model_embedding_backward(m, dy, s->tokens, s->B, s->T);
}

hs_status hs_model_backward_stage(hs_model *m, const float *dout, float loss_scale)
{
    if (!m)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_backward: model is NULL");
    act_set *s = m->cur;
    if (m->has_head && !s->have_targets)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_backward needs a preceding forward with targets");
    if (!m->has_head && (!dout || s->B == 0))
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "the backward of a chunk without the head needs a forward and dL/d(output)");
    m->ready_end = m->reg.numel;
    const int deferred = m->has_embedding && m->defer_embedding;
    if (m->has_head) {
        HS_TRY(emit(m, HS_BEFORE_BACKWARD, HS_LAYER_HEAD, 0, 0));
        HS_TRY(head_backward(m, loss_scale));
        HS_TRY(after_backward(m, HS_LAYER_HEAD, m->reg.numel));
    } else {
        HS_TRY(copy_rows(m, m->g.dres, dout, hs_model_boundary_numel(m, s->B, s->T)));
    }
    if (deferred) /* nothing but the deferred rows will write wte and wpe now */
        HS_TRY(emit(m, HS_AFTER_BACKWARD, HS_LAYER_EMBEDDING, 0, embedding_end(m)));
    for (int l = m->n_layer - 1; l >= 0; l--) {
        const int64_t hi = m->ready_end;
        HS_TRY(emit(m, HS_BEFORE_BACKWARD, m->first_layer + l, 0, 0));
        HS_TRY(hs_act_before_backward(m, l));
        HS_TRY(layer_backward(m, l, block_input(m, l), s->B, s->T));
        HS_TRY(after_backward(m, m->first_layer + l, hi));
    }
    if (deferred) { /* the rows of the whole sequences: under sequence parallelism f's backward gathers them */
        s->embedding_deferred = 1;
        return hs_tp_region_exit_backward(&m->tpr, m->g.dres, s->B, s->T, &s->embedding_rows);
    }
    const int64_t hi = m->ready_end; /* the embedding, or a last stage's copy of a tied wte */
    if (m->has_embedding) {
        HS_TRY(emit(m, HS_BEFORE_BACKWARD, HS_LAYER_EMBEDDING, 0, 0));
        HS_TRY(embedding_backward(m));
    }
    HS_TRY(grads_ready(m, -1));
    return hi > 0 ? after_backward(m, HS_LAYER_EMBEDDING, hi) : HS_OK;
}

hs_status hs_model_backward(hs_model *m, float loss_scale)
{
    if (m && !m->has_head)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "hs_model_backward: this chunk has no head (use hs_model_backward_stage with dL/d(output))");
    return hs_model_backward_stage(m, NULL, loss_scale);
}

hs_status hs_model_stage_input(hs_model *m, float **input)
{
    if (!m || !input || m->has_embedding)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_stage_input: the chunk with the embedding takes tokens");
    *input = m->cur->encoded;
    return HS_OK;
}

hs_status hs_model_stage_output(hs_model *m, const float **out)
{
    if (!m || !out || m->has_head || m->cur->B == 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "hs_model_stage_output: only a chunk without the head has an output, after a forward");
    *out = layer_output(m, m->cur, m->n_layer - 1);
    return HS_OK;
}

hs_status hs_model_stage_input_grad(hs_model *m, const float **grad)
{
    if (!m || !grad || m->has_embedding)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "hs_model_stage_input_grad: the chunk with the embedding has no input gradient");
    *grad = m->g.dres;
    return HS_OK;
}

hs_status hs_model_tp_reduce_grads(hs_model *m)
{
    if (!m)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_tp_reduce_grads: model is NULL");
    if (m->tp == 1 || !m->sp)
        return HS_OK;
    for (int i = 0; i < m->reg.n; i++)
        if (m->reg.entries[i].tp_partial)
            HS_TRY(hs_tp_allreduce(m->shard.tp_comm, m->npu, hs_registry_view(&m->reg, i, HS_PARAM_GRAD, NULL).data,
                                   m->reg.entries[i].numel, HS_REDUCE_SUM));
    return HS_OK;
}

hs_status hs_model_embedding_grad_rows(hs_model *m, const float **grad, const int32_t **tokens, int *B, int *T)
{
    if (!m || !grad || !tokens || !B || !T)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_embedding_grad_rows: NULL argument");
    if (!m->cur->embedding_deferred)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "the last backward did not defer its embedding gradient "
                        "(hs_model_defer_embedding_grad)");
    *grad = m->cur->embedding_rows;
    *tokens = m->cur->tokens;
    *B = m->cur->B;
    *T = m->cur->T;
    return HS_OK;
}

hs_status hs_model_embedding_backward(hs_model *m, const float *grad, const int32_t *tokens, int B, int T)
{
    if (!m || !grad || !tokens)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_embedding_backward: NULL argument");
    if (!m->has_embedding)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_embedding_backward: this chunk has no embedding");
    if (B < 1 || T < 1 || T > m->max_T)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "embedding backward of B=%d T=%d: B >= 1 and T in 1..%d", B, T,
                        m->max_T);
    hs_tensor dres = hs_model_on_device(m, hs_view3((void *)grad, HS_FP32, B, T, m->cfg.d_model));
    hs_tensor tok = hs_model_on_device(m, hs_view2((void *)tokens, HS_INT32, B, T));
    pview dwte = G(m, m->wte), dwpe = G(m, m->wpe);
    if (m->tp == 1)
        return hs_embedding_backward(&dwte.t, PV(dwpe), &dres, &tok);
    return hs_embedding_shard_backward(&dwte.t, PV(dwpe), &dres, &tok, m->vocab_start);
}

hs_status hs_model_logits(hs_model *m, hs_tensor *out)
{
    if (!m || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_logits: model and out must not be NULL");
    if (!m->has_head || m->cur->B == 0 || m->cur->logits_are_grads)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "no logits: run a forward of the chunk with the head first "
                                                 "(a backward overwrites them)");
    *out = hs_model_on_device(m, hs_view3(m->cur->logits, HS_FP32, m->cur->B, m->cur->T, m->head_vocab));
    return HS_OK;
}

hs_status hs_model_activation(hs_model *m, const char *name, hs_tensor *out)
{
    if (!m || !name || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_activation: arguments must not be NULL");
    act_set *s = m->cur;
    if (s->B == 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "no activations: run a forward first");
    const float *p = NULL;
    int l;
    char tail;
    if (strcmp(name, "embed") == 0)
        p = s->encoded;
    else if (strcmp(name, "lnf") == 0 && m->has_head)
        p = s->lnf;
    else if (sscanf(name, "h.%d.out%c", &l, &tail) == 1 && l >= m->first_layer && l < m->first_layer + m->n_layer)
        p = layer_output(m, s, l - m->first_layer);
    if (!p)
        return hs_error(HS_ERR_NOT_FOUND, "unknown activation '%s' here (embed, h.%d.out .. h.%d.out, lnf with the "
                        "head)", name, m->first_layer, m->first_layer + m->n_layer - 1);
    const int64_t rows = hs_model_stream_rows(m, s->T);
    *out = hs_model_on_device(m, hs_view3((void *)p, HS_FP32, s->B, rows, m->cfg.d_model));
    return HS_OK;
}

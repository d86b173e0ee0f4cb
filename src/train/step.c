/* The training step: micro-batched forward/backward, then the update; with
 * data parallelism the last micro-batch's backward hands its finished
 * gradients to the DP reducer through the model's gradient hook, and the
 * embedding's gradient is gathered as rows from every rank. */
#include "core/try.h"
#include "hyperspeed/train.h"
#include "model/model_registry.h"
#include "train/dp_hook.h"

#include <stdlib.h>

hs_status hs_train_dp_new(hs_model *m, hs_comm *group, const hs_dp_config *cfg, hs_dp **out)
{
    if (!m || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_train_dp_new: model and out are required");
    *out = NULL;
    if (!group)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_train_dp_new: the DP group is required");
    const int n = hs_model_num_tensors(m);
    int64_t *numel = malloc(sizeof *numel * (size_t)n);
    if (!numel)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_train_dp_new: %d tensor sizes", n);
    for (int i = 0; i < n; i++)
        numel[i] = hs_model_param(m, i)->numel;
    int B, T;
    hs_model_planned_shape(m, &B, &T);
    hs_dp_config c = cfg ? *cfg : hs_dp_config_default();
    c.op = HS_REDUCE_SUM; /* the loss scale divides by the group size (hs_train_step_dp) */
    c.gather_rows = (int64_t)B * T;
    c.gather_width = hs_model_config_of(m)->d_model;
    c.npu = hs_model_npu(m);
    hs_status s = hs_dp_new(group, hs_model_registry(m)->grad, numel, n, &c, out);
    free(numel);
    return s;
}

/* The last micro-batch's backward with the reducer listening, the
 * embedding's rows deferred and gathered from the group, the round
 * finished and the group's rows added to the embedding's gradient. */
static hs_status backward_reducing(hs_model *m, hs_dp *dp, float scale, hs_dp_stats *ds)
{
    HS_TRY(hs_model_add_hook(m, hs_dp_layer_hook, dp));
    hs_status s = hs_dp_begin(dp);
    if (s) {
        (void)hs_model_remove_hook(m, hs_dp_layer_hook, dp); /* added above: always there */
        return s;
    }
    hs_model_defer_embedding_grad(m, 1);
    s = hs_model_backward(m, scale);
    (void)hs_model_remove_hook(m, hs_dp_layer_hook, dp);
    hs_model_defer_embedding_grad(m, 0);
    const float *rows;
    const int32_t *ids;
    float *all_rows = NULL;
    int32_t *all_ids = NULL;
    int B = 0, T = 0;
    if (!s)
        s = hs_model_embedding_grad_rows(m, &rows, &ids, &B, &T);
    if (!s)
        s = hs_dp_gather_rows(dp, rows, ids, (int64_t)B * T, &all_rows, &all_ids);
    hs_status f = hs_dp_finish(dp, ds); /* always: the round must close and its collectives end */
    HS_TRY(s);
    HS_TRY(f);
    return hs_model_embedding_backward(m, all_rows, all_ids, hs_comm_size(hs_dp_comm(dp)) * B, T);
}

hs_status hs_train_step_dp(hs_model *m, hs_optimizer *o, hs_dp *dp, const int32_t *tokens, const int32_t *targets,
                           int B, int T, int micro_batches, float lr, hs_step_stats *stats)
{
    if (!m || !o || !tokens || !targets)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_train_step: model, optimizer, tokens and targets are required");
    if (micro_batches < 1 || B % micro_batches != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "micro_batches=%d must be >= 1 and divide batch=%d", micro_batches,
                        B);
    double t0 = hs_time_now();
    const int mb = B / micro_batches, p = dp ? hs_comm_size(hs_dp_comm(dp)) : 1;
    /* the mean over micro-batches and, summed by the reducer, over ranks */
    const float scale = 1.0f / (float)(micro_batches * p);
    double loss_sum = 0;
    hs_dp_stats ds = {0};
    HS_TRY(hs_model_zero_grad(m));
    for (int k = 0; k < micro_batches; k++) {
        const size_t off = (size_t)k * mb * T;
        float loss;
        HS_TRY(hs_model_forward(m, tokens + off, targets + off, mb, T, &loss));
        if (dp && k == micro_batches - 1)
            HS_TRY(backward_reducing(m, dp, scale, &ds));
        else
            HS_TRY(hs_model_backward(m, scale));
        loss_sum += loss;
    }
    float loss = (float)(loss_sum / micro_batches);
    if (p > 1)
        HS_TRY(hs_comm_allreduce(hs_dp_comm(dp), &loss, &loss, 1, HS_FP32, HS_REDUCE_AVG));
    double norm;
    HS_TRY(hs_optimizer_step(o, lr, &norm));
    if (stats) {
        stats->loss = loss;
        stats->grad_norm = norm;
        stats->lr = lr;
        stats->seconds = hs_time_now() - t0;
        stats->dp = ds;
    }
    return HS_OK;
}

hs_status hs_train_step(hs_model *m, hs_optimizer *o, const int32_t *tokens, const int32_t *targets, int B, int T,
                        int micro_batches, float lr, hs_step_stats *stats)
{
    return hs_train_step_dp(m, o, NULL, tokens, targets, B, T, micro_batches, lr, stats);
}

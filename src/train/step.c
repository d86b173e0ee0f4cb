/* The training step of one whole model in one process: micro-batched
 * forward/backward, then the update. (Every parallel layout, and data
 * parallelism, runs through hs_engine.) */
#include "core/try.h"
#include "hyperspeed/train.h"

hs_status hs_train_step(hs_model *m, hs_optimizer *o, const int32_t *tokens, const int32_t *targets, int B, int T,
                        int micro_batches, float lr, hs_step_stats *stats)
{
    if (!m || !o || !tokens || !targets)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_train_step: model, optimizer, tokens and targets are required");
    if (micro_batches < 1 || B % micro_batches != 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "micro_batches=%d must be >= 1 and divide batch=%d", micro_batches,
                        B);
    double t0 = hs_time_now();
    const int mb = B / micro_batches;
    const float scale = 1.0f / (float)micro_batches; /* the mean over micro-batches */
    double loss_sum = 0;
    HS_TRY(hs_model_zero_grad(m));
    for (int k = 0; k < micro_batches; k++) {
        const size_t off = (size_t)k * mb * T;
        float loss;
        HS_TRY(hs_model_forward(m, tokens + off, targets + off, mb, T, &loss));
        HS_TRY(hs_model_backward(m, scale));
        loss_sum += loss;
    }
    double norm;
    HS_TRY(hs_optimizer_step(o, lr, &norm));
    if (stats) {
        stats->loss = (float)(loss_sum / micro_batches);
        stats->grad_norm = norm;
        stats->lr = lr;
        stats->seconds = hs_time_now() - t0;
    }
    return HS_OK;
}

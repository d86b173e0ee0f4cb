/* AdamW over the model's parameter registry, with global-norm clipping. */
#include "core/try.h"
#include "hyperspeed/kernels.h"
#include "hyperspeed/train.h"

#include <stdlib.h>
#include <string.h>

struct hs_optimizer {
    hs_model *model;
    hs_optimizer_config cfg;
    float *m, *v;
    int64_t steps;
};

hs_optimizer_config hs_optimizer_config_default(void)
{
    hs_optimizer_config c = {0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    return c;
}

hs_status hs_optimizer_new(hs_model *model, const hs_optimizer_config *cfg, hs_optimizer **out)
{
    if (!model || !cfg || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_optimizer_new: arguments must not be NULL");
    *out = NULL;
    if (!(cfg->beta1 >= 0 && cfg->beta1 < 1) || !(cfg->beta2 >= 0 && cfg->beta2 < 1))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "AdamW betas (%g, %g) must lie in [0, 1)", (double)cfg->beta1,
                        (double)cfg->beta2);
    if (!(cfg->eps > 0))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "AdamW eps=%g must be positive", (double)cfg->eps);
    if (!(cfg->weight_decay >= 0))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "weight_decay=%g must be >= 0", (double)cfg->weight_decay);
    hs_optimizer *o = calloc(1, sizeof *o);
    size_t bytes = (size_t)hs_model_num_params(model) * sizeof(float);
    if (o) {
        o->m = hs_alloc(bytes);
        o->v = hs_alloc(bytes);
    }
    if (!o || !o->m || !o->v) {
        hs_optimizer_free(o);
        return hs_error(HS_ERR_OUT_OF_MEMORY, "AdamW state of %zu bytes does not fit in host memory", 2 * bytes);
    }
    memset(o->m, 0, bytes);
    memset(o->v, 0, bytes);
    o->model = model;
    o->cfg = *cfg;
    *out = o;
    return HS_OK;
}

void hs_optimizer_free(hs_optimizer *o)
{
    if (!o)
        return;
    hs_free(o->m);
    hs_free(o->v);
    free(o);
}

hs_status hs_optimizer_step(hs_optimizer *o, float lr, double *grad_norm)
{
    if (!o)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_optimizer_step: optimizer is NULL");
    if (!(lr >= 0))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "learning rate %g must be >= 0", (double)lr);
    hs_model *model = o->model;
    const int64_t n = hs_model_num_params(model);
    float *params = hs_model_params(model), *grads = hs_model_grads(model);

    hs_tensor all = hs_view1(grads, HS_FP32, n);
    double norm;
    HS_TRY(hs_grad_norm(&all, 1, &norm));
    if (grad_norm)
        *grad_norm = norm;

    hs_adamw_params ap = hs_adamw_params_default();
    ap.lr = lr;
    ap.beta1 = o->cfg.beta1;
    ap.beta2 = o->cfg.beta2;
    ap.eps = o->cfg.eps;
    ap.grad_scale = hs_clip_scale(norm, o->cfg.grad_clip);
    ap.step = o->steps + 1;
    /* Consecutive registry entries with the same decay flag form one span,
     * so the update runs over a few long ranges instead of ~150 short ones. */
    const int nt = hs_model_num_tensors(model);
    for (int i = 0; i < nt;) {
        const hs_param_info *first = hs_model_param(model, i);
        int64_t begin = first->offset, end = first->offset + first->numel;
        int j = i + 1;
        for (; j < nt && hs_model_param(model, j)->decay == first->decay; j++)
            end = hs_model_param(model, j)->offset + hs_model_param(model, j)->numel;
        ap.weight_decay = first->decay ? o->cfg.weight_decay : 0.0f;
        hs_tensor p = hs_view1(params + begin, HS_FP32, end - begin), g = hs_view1(grads + begin, HS_FP32, end - begin);
        hs_tensor mt = hs_view1(o->m + begin, HS_FP32, end - begin), vt = hs_view1(o->v + begin, HS_FP32, end - begin);
        HS_TRY(hs_adamw_update(&p, &g, &mt, &vt, &ap));
        i = j;
    }
    o->steps++;
    return HS_OK;
}

int64_t hs_optimizer_steps(const hs_optimizer *o) { return o->steps; }

hs_status hs_optimizer_set_steps(hs_optimizer *o, int64_t steps)
{
    if (!o || steps < 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_optimizer_set_steps: steps=%lld must be >= 0",
                        (long long)steps);
    o->steps = steps;
    return HS_OK;
}

float *hs_optimizer_m(hs_optimizer *o) { return o->m; }

float *hs_optimizer_v(hs_optimizer *o) { return o->v; }

/* AdamW over the model's parameter registry, with global-norm clipping.
 * The moments live on the model's device (host memory, or NPU HBM). */
#include "core/config_size.h"
#include "core/try.h"
#include "hyperspeed/kernels.h"
#include "hyperspeed/train.h"
#include "model/model_registry.h"
#include "train/optimizer_norm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

struct hs_optimizer {
    hs_model *model;
    hs_optimizer_config cfg;
    float *m, *v;
    int64_t steps;
    hs_tensor *owned; /* spans of the gradients this rank counts in a global norm (norm_owner) */
    int n_owned;
    int64_t *owned_at; /* [n_owned]: the registry offset each span starts at */
    hs_tensor *part;  /* [n_owned + 1]: hs_optimizer_grad_sumsq_part's views */
};

/* A view placed on the model's device. */
static hs_tensor on_device(const hs_optimizer *o, hs_tensor t)
{
    t.device = hs_model_device(o->model);
    return t;
}

/* One moment buffer (num_params floats) on the model's device. */
static hs_status alloc_moment(hs_optimizer *o, float **out)
{
    const size_t bytes = (size_t)hs_model_num_params(o->model) * sizeof(float);
    hs_npu *d = hs_model_npu(o->model);
    if (d) {
        void *p;
        hs_status s = hs_npu_malloc(d, bytes, &p);
        if (s) {
            char why[512];
            snprintf(why, sizeof why, "%s", hs_last_error());
            return hs_error(s, "AdamW moment of %.1f MiB: %s", (double)bytes / 1048576.0, why);
        }
        *out = p;
        return HS_OK;
    }
    *out = hs_alloc(bytes);
    if (!*out)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "AdamW state of %zu bytes does not fit in host memory", 2 * bytes);
    return HS_OK;
}

/* The spans of consecutive registry entries with norm_owner set, as
 * views of the gradient buffer for hs_grad_norm. */
static hs_status plan_owned(hs_optimizer *o)
{
    const int nt = hs_model_num_tensors(o->model);
    const hs_registry *reg = hs_model_registry(o->model);
    o->owned = calloc((size_t)nt, sizeof *o->owned);
    o->owned_at = calloc((size_t)nt, sizeof *o->owned_at);
    o->part = calloc((size_t)nt + 1, sizeof *o->part);
    if (!o->owned || !o->owned_at || !o->part)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_optimizer_new: %d views", nt);
    for (int i = 0; i < nt;) {
        const hs_param_info *p = hs_model_param(o->model, i);
        int j = i + 1;
        int64_t end = p->offset + p->numel;
        for (; j < nt && hs_model_param(o->model, j)->norm_owner == p->norm_owner; j++)
            end = hs_model_param(o->model, j)->offset + hs_model_param(o->model, j)->numel;
        if (p->norm_owner) {
            o->owned_at[o->n_owned] = p->offset;
            o->owned[o->n_owned++] = hs_registry_span(reg, HS_PARAM_GRAD, p->offset, end, hs_model_device(o->model));
        }
        i = j;
    }
    return HS_OK;
}

hs_optimizer_config hs_optimizer_config_default(void)
{
    hs_optimizer_config c = {sizeof c, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    return c;
}

hs_status hs_optimizer_new(hs_model *model, const hs_optimizer_config *cfg, hs_optimizer **out)
{
    if (!model || !cfg || !out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_optimizer_new: arguments must not be NULL");
    *out = NULL;
    HS_TRY(HS_CHECK_SIZE(cfg, hs_optimizer_config));
    if (!(cfg->beta1 >= 0 && cfg->beta1 < 1) || !(cfg->beta2 >= 0 && cfg->beta2 < 1))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "AdamW betas (%g, %g) must lie in [0, 1)", (double)cfg->beta1,
                        (double)cfg->beta2);
    if (!(cfg->eps > 0))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "AdamW eps=%g must be positive", (double)cfg->eps);
    if (!(cfg->weight_decay >= 0))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "weight_decay=%g must be >= 0", (double)cfg->weight_decay);
    hs_optimizer *o = calloc(1, sizeof *o);
    if (!o)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_optimizer_new: out of host memory");
    o->model = model;
    o->cfg = *cfg;
    const int64_t n = hs_model_num_params(model);
    hs_status s = alloc_moment(o, &o->m);
    if (!s)
        s = alloc_moment(o, &o->v);
    if (s) {
        hs_optimizer_free(o);
        return s;
    }
    if (!s)
        s = plan_owned(o);
    if (s) {
        hs_optimizer_free(o);
        return s;
    }
    hs_tensor mt = on_device(o, hs_view1(o->m, HS_FP32, n)), vt = on_device(o, hs_view1(o->v, HS_FP32, n));
    if ((s = hs_fill(&mt, 0.0f)) || (s = hs_fill(&vt, 0.0f))) {
        hs_optimizer_free(o);
        return s;
    }
    *out = o;
    return HS_OK;
}

void hs_optimizer_free(hs_optimizer *o)
{
    if (!o)
        return;
    hs_npu *d = hs_model_npu(o->model);
    if (d) {
        (void)hs_npu_free_mem(d, o->m); /* addresses this optimizer allocated (or NULL): cannot fail */
        (void)hs_npu_free_mem(d, o->v);
    } else {
        hs_free(o->m);
        hs_free(o->v);
    }
    free(o->owned);
    free(o->owned_at);
    free(o->part);
    free(o);
}

/* AdamW over the registry with the clip scale of `norm`, then the
 * compute-dtype weights. */
static hs_status update(hs_optimizer *o, float lr, double norm)
{
    hs_model *model = o->model;
    const hs_registry *reg = hs_model_registry(model);
    hs_device *dev = hs_model_device(model);
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
        hs_tensor p = hs_registry_span(reg, HS_PARAM_VALUE, begin, end, dev);
        hs_tensor g = hs_registry_span(reg, HS_PARAM_GRAD, begin, end, dev);
        hs_tensor mt = on_device(o, hs_view1(o->m + begin, HS_FP32, end - begin));
        hs_tensor vt = on_device(o, hs_view1(o->v + begin, HS_FP32, end - begin));
        HS_TRY(hs_adamw_update(&p, &g, &mt, &vt, &ap));
        i = j;
    }
    o->steps++;
    return hs_model_sync_weights(model);
}

static hs_status check_lr(const hs_optimizer *o, float lr)
{
    if (!o)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_optimizer_step: optimizer is NULL");
    if (!(lr >= 0))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "learning rate %g must be >= 0", (double)lr);
    return HS_OK;
}

hs_status hs_optimizer_step(hs_optimizer *o, float lr, double *grad_norm)
{
    HS_TRY(check_lr(o, lr));
    hs_model *model = o->model;
    hs_tensor all = hs_registry_span(hs_model_registry(model), HS_PARAM_GRAD, 0, hs_model_num_params(model),
                                     hs_model_device(model));
    double norm;
    HS_TRY(hs_grad_norm(&all, 1, &norm));
    /* An estimate-mode NPU has no gradient values: its norm reads 0, so the
     * update runs unclipped (same kernels, same time) and reports NaN. */
    const hs_npu *d = hs_model_npu(model);
    if (grad_norm)
        *grad_norm = d && hs_npu_mode_of(d) == HS_NPU_ESTIMATE ? NAN : norm;
    return update(o, lr, norm);
}

hs_status hs_optimizer_grad_sumsq(hs_optimizer *o, double *sumsq)
{
    if (!o || !sumsq)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_optimizer_grad_sumsq: NULL argument");
    double norm = 0;
    if (o->n_owned)
        HS_TRY(hs_grad_norm(o->owned, o->n_owned, &norm));
    *sumsq = norm * norm;
    return HS_OK;
}

/* Appends to o->part the piece of owned span i in [lo, hi), if any. */
static void add_piece(hs_optimizer *o, int i, int64_t lo, int64_t hi, int *n)
{
    const int64_t at = o->owned_at[i], len = o->owned[i].shape[0];
    const int64_t b = lo > at ? lo : at, e = hi < at + len ? hi : at + len;
    if (e <= b)
        return;
    hs_tensor v = o->owned[i];
    v.data = (float *)v.data + (b - at);
    v.shape[0] = e - b;
    o->part[(*n)++] = v;
}

hs_status hs_optimizer_grad_sumsq_part(hs_optimizer *o, int64_t begin, int64_t end, int inside, double *sumsq)
{
    int n = 0;
    for (int i = 0; i < o->n_owned; i++) {
        if (inside) {
            add_piece(o, i, begin, end, &n);
        } else {
            add_piece(o, i, INT64_MIN, begin, &n);
            add_piece(o, i, end, INT64_MAX, &n);
        }
    }
    double norm = 0;
    if (n)
        HS_TRY(hs_grad_norm(o->part, n, &norm));
    *sumsq = norm * norm;
    return HS_OK;
}

hs_status hs_optimizer_step_norm(hs_optimizer *o, float lr, double norm)
{
    HS_TRY(check_lr(o, lr));
    if (!(norm >= 0))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_optimizer_step_norm: gradient norm %g must be >= 0", norm);
    return update(o, lr, norm);
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

hs_status hs_optimizer_state(const hs_optimizer *o, int i, hs_adam_state which, hs_tensor *out)
{
    if (!o || !out || (which != HS_ADAM_M && which != HS_ADAM_V))
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_optimizer_state: NULL optimizer or output, or state %d",
                        (int)which);
    const hs_param_info *p = hs_model_param(o->model, i);
    if (!p)
        return hs_error(HS_ERR_NOT_FOUND, "hs_optimizer_state: no registry entry %d (the model has %d)", i,
                        hs_model_num_tensors(o->model));
    float *base = which == HS_ADAM_M ? o->m : o->v;
    hs_tensor t = {base + p->offset, {p->shape[0], p->shape[1], p->shape[2], p->shape[3]}, p->ndim, HS_FP32,
                   hs_model_device(o->model), 0};
    *out = t;
    return HS_OK;
}

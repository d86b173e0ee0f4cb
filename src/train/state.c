/* Checkpointing a training run: the model's registry and AdamW's moments
 * as named tensors, plus the step, seed and data position. */
#include "hyperspeed/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kinds[3] = {"param", "adam_m", "adam_v"};

/* Describes every state tensor: 3 per registry entry. names holds
 * 3 * n_tensors strings of 64 bytes. */
static void describe(hs_model *m, hs_optimizer *o, hs_ckpt_tensor *t, char *names)
{
    float *bufs[3] = {hs_model_params(m), hs_optimizer_m(o), hs_optimizer_v(o)};
    const int nt = hs_model_num_tensors(m);
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < nt; i++) {
            const hs_param_info *p = hs_model_param(m, i);
            hs_ckpt_tensor *c = &t[k * nt + i];
            char *name = names + (size_t)(k * nt + i) * 64;
            snprintf(name, 64, "%s/%s", kinds[k], p->name);
            c->name = name;
            c->ndim = p->ndim;
            memcpy(c->shape, p->shape, sizeof c->shape);
            c->data = bufs[k] + p->offset;
        }
    }
}

static hs_status with_tensors(hs_model *m, hs_optimizer *o, hs_ckpt_tensor **t, char **names)
{
    const int n = 3 * hs_model_num_tensors(m);
    *t = calloc((size_t)n, sizeof **t);
    *names = calloc((size_t)n, 64);
    if (!*t || !*names) {
        free(*t);
        free(*names);
        return hs_error(HS_ERR_OUT_OF_MEMORY, "checkpoint tensor table: out of host memory");
    }
    describe(m, o, *t, *names);
    return HS_OK;
}

hs_status hs_train_save(const char *dir, hs_model *m, hs_optimizer *o, const hs_train_state *st)
{
    if (!dir || !m || !o || !st)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_train_save: arguments must not be NULL");
    char config[512];
    hs_status s = hs_model_config_to_json(hs_model_config_of(m), config, sizeof config);
    if (s)
        return s;
    hs_ckpt_tensor *t;
    char *names;
    if ((s = with_tensors(m, o, &t, &names)))
        return s;
    hs_ckpt_meta meta = {0};
    meta.step = hs_optimizer_steps(o);
    meta.seed = st->seed;
    meta.data_position = st->data_position;
    meta.model_config = config;
    s = hs_checkpoint_save(dir, t, 3 * hs_model_num_tensors(m), &meta);
    free(t);
    free(names);
    return s;
}

hs_status hs_train_load(const char *dir, hs_model *m, hs_optimizer *o, hs_train_state *st)
{
    if (!dir || !m || !o || !st)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_train_load: arguments must not be NULL");
    hs_ckpt_tensor *t;
    char *names;
    hs_status s = with_tensors(m, o, &t, &names);
    if (s)
        return s;
    hs_ckpt_meta meta = {0};
    s = hs_checkpoint_load(dir, t, 3 * hs_model_num_tensors(m), &meta);
    free(t);
    free(names);
    if (s)
        return s;
    hs_ckpt_meta_release(&meta);
    st->seed = meta.seed;
    st->data_position = meta.data_position;
    return hs_optimizer_set_steps(o, meta.step);
}

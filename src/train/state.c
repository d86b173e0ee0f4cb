/* Checkpointing a training run: the model's registry and AdamW's moments
 * as named tensors, plus the step, seed and data position. A model on an
 * NPU goes through host copies of its three buffers (PCIe, on the
 * device's default stream). */
#include "core/try.h"
#include "hyperspeed/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kinds[3] = {"param", "adam_m", "adam_v"};

/* Describes every state tensor: 3 per registry entry, in bufs (params,
 * adam_m, adam_v; host memory). names holds 3 * n_tensors strings of 64
 * bytes. */
static void describe(hs_model *m, float *const bufs[3], hs_ckpt_tensor *t, char *names)
{
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

static hs_status with_tensors(hs_model *m, float *const bufs[3], hs_ckpt_tensor **t, char **names)
{
    const int n = 3 * hs_model_num_tensors(m);
    *t = calloc((size_t)n, sizeof **t);
    *names = calloc((size_t)n, 64);
    if (!*t || !*names) {
        free(*t);
        free(*names);
        return hs_error(HS_ERR_OUT_OF_MEMORY, "checkpoint tensor table: out of host memory");
    }
    describe(m, bufs, *t, *names);
    return HS_OK;
}

/* The state buffers as host memory: the model's and optimizer's own on the
 * CPU; for an NPU model one host block of 3 * num_params floats (*host,
 * release with hs_free) that `down` fills from the device. Errors:
 * HS_ERR_DEVICE for an estimate-mode NPU (no values), the copies'. */
static hs_status host_buffers(hs_model *m, hs_optimizer *o, int down, float *bufs[3], float **host)
{
    float *dev[3] = {hs_model_params(m), hs_optimizer_m(o), hs_optimizer_v(o)};
    hs_npu *d = hs_model_npu(m);
    *host = NULL;
    if (!d) {
        for (int k = 0; k < 3; k++)
            bufs[k] = dev[k];
        return HS_OK;
    }
    if (hs_npu_mode_of(d) != HS_NPU_EXECUTE)
        return hs_error(HS_ERR_DEVICE, "checkpoints need values: an estimate-mode NPU has none");
    const size_t n = (size_t)hs_model_num_params(m);
    if (!(*host = hs_alloc(3 * n * sizeof(float))))
        return hs_error(HS_ERR_OUT_OF_MEMORY, "checkpoint staging of %zu bytes: out of host memory",
                        3 * n * sizeof(float));
    for (int k = 0; k < 3; k++) {
        bufs[k] = *host + k * n;
        hs_status s = down ? hs_npu_memcpy_d2h(d, NULL, bufs[k], dev[k], n * sizeof(float))
                           : HS_OK;
        if (s) {
            hs_free(*host);
            *host = NULL;
            return s;
        }
    }
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
    float *bufs[3], *host;
    if ((s = host_buffers(m, o, 1, bufs, &host)))
        return s;
    if ((s = with_tensors(m, bufs, &t, &names))) {
        hs_free(host);
        return s;
    }
    hs_ckpt_meta meta = {0};
    meta.step = hs_optimizer_steps(o);
    meta.seed = st->seed;
    meta.data_position = st->data_position;
    meta.model_config = config;
    s = hs_checkpoint_save(dir, t, 3 * hs_model_num_tensors(m), &meta);
    free(t);
    free(names);
    hs_free(host);
    return s;
}

hs_status hs_train_load(const char *dir, hs_model *m, hs_optimizer *o, hs_train_state *st)
{
    if (!dir || !m || !o || !st)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_train_load: arguments must not be NULL");
    hs_ckpt_tensor *t;
    char *names;
    float *bufs[3], *host;
    hs_status s = host_buffers(m, o, 0, bufs, &host);
    if (s)
        return s;
    if ((s = with_tensors(m, bufs, &t, &names))) {
        hs_free(host);
        return s;
    }
    hs_ckpt_meta meta = {0};
    s = hs_checkpoint_load(dir, t, 3 * hs_model_num_tensors(m), &meta);
    free(t);
    free(names);
    if (s) {
        hs_free(host);
        return s;
    }
    hs_ckpt_meta_release(&meta);
    if (host) {
        float *dev[3] = {hs_model_params(m), hs_optimizer_m(o), hs_optimizer_v(o)};
        const size_t bytes = (size_t)hs_model_num_params(m) * sizeof(float);
        for (int k = 0; k < 3 && !s; k++)
            s = hs_npu_memcpy_h2d(hs_model_npu(m), NULL, dev[k], bufs[k], bytes);
        hs_free(host);
        HS_TRY(s);
    }
    st->seed = meta.seed;
    st->data_position = meta.data_position;
    HS_TRY(hs_model_sync_weights(m));
    return hs_optimizer_set_steps(o, meta.step);
}

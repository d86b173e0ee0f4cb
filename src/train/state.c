/* Checkpointing a training run: the model's registry and AdamW's moments
 * as named tensors, plus the step, seed and data position. A model on an
 * NPU goes through a host copy of every tensor (PCIe, on the device's
 * default stream). */
#include "core/try.h"
#include "hyperspeed/train.h"
#include "train/optimizer_norm.h"
#include "train/state_tensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const hs_state_kind_names[HS_STATE_KINDS] = {"param", "adam_m", "adam_v"};

hs_status hs_state_tensor(hs_model *m, hs_optimizer *o, int k, int i, hs_tensor *t)
{
    if (k == 0 && hs_optimizer_holds_master(o)) /* ZeRO-1's sharded master, gathered whole for the checkpoint */
        return hs_optimizer_master_view(o, i, t);
    if (k == 0)
        return hs_model_tensor(m, i, HS_PARAM_VALUE, t);
    return hs_optimizer_state(o, i, k == 1 ? HS_ADAM_M : HS_ADAM_V, t);
}

hs_status hs_state_copy(hs_model *m, hs_optimizer *o, int k, int i, float *host, int to_host)
{
    hs_tensor t;
    HS_TRY(hs_state_tensor(m, o, k, i, &t));
    const size_t bytes = hs_tensor_nbytes(&t);
    hs_npu *d = hs_device_npu(t.device); /* NULL: host memory (the CPU device, or offloaded state) */
    if (d)
        return to_host ? hs_npu_memcpy_d2h(d, NULL, host, t.data, bytes) : hs_npu_memcpy_h2d(d, NULL, t.data, host, bytes);
    if (to_host)
        memcpy(host, t.data, bytes);
    else
        memcpy(t.data, host, bytes);
    return HS_OK;
}

/* Describes every state tensor: HS_STATE_KINDS per registry entry, kind
 * after kind. Their data is the model's and optimizer's own memory on the
 * CPU; for an NPU model the slices of one host block (*host, 3 *
 * num_params floats, release with hs_free) that `down` fills from the
 * device. names holds 3 * n_tensors strings of 64 bytes. Errors:
 * HS_ERR_DEVICE for an estimate-mode NPU (no values), the copies'. */
static hs_status describe(hs_model *m, hs_optimizer *o, int down, hs_ckpt_tensor *t, char *names, float **host)
{
    const int nt = hs_model_num_tensors(m);
    hs_npu *d = hs_model_npu(m);
    *host = NULL;
    if (d && hs_npu_mode_of(d) != HS_NPU_EXECUTE)
        return hs_error(HS_ERR_DEVICE, "checkpoints need values: an estimate-mode NPU has none");
    const size_t n = (size_t)hs_model_num_params(m);
    if (d && !(*host = hs_alloc(HS_STATE_KINDS * n * sizeof(float))))
        return hs_error(HS_ERR_OUT_OF_MEMORY, "checkpoint staging of %zu bytes: out of host memory",
                        HS_STATE_KINDS * n * sizeof(float));
    size_t at = 0;
    for (int k = 0; k < HS_STATE_KINDS; k++)
        for (int i = 0; i < nt; i++) {
            hs_tensor dev;
            HS_TRY(hs_state_tensor(m, o, k, i, &dev));
            hs_ckpt_tensor *c = &t[k * nt + i];
            char *name = names + (size_t)(k * nt + i) * 64;
            snprintf(name, 64, "%s/%s", hs_state_kind_names[k], hs_model_param(m, i)->name);
            c->name = name;
            c->ndim = dev.ndim;
            memcpy(c->shape, dev.shape, sizeof c->shape);
            c->data = d ? *host + at : dev.data;
            at += (size_t)hs_tensor_numel(&dev);
            if (d && down)
                HS_TRY(hs_state_copy(m, o, k, i, c->data, 1));
        }
    return HS_OK;
}

/* The checkpoint table of m and o (see describe); release with release(). */
static hs_status with_tensors(hs_model *m, hs_optimizer *o, int down, hs_ckpt_tensor **t, char **names, float **host)
{
    const int n = HS_STATE_KINDS * hs_model_num_tensors(m);
    *t = calloc((size_t)n, sizeof **t);
    *names = calloc((size_t)n, 64);
    *host = NULL;
    hs_status s = *t && *names ? describe(m, o, down, *t, *names, host)
                               : hs_error(HS_ERR_OUT_OF_MEMORY, "checkpoint tensor table: out of host memory");
    if (s) {
        free(*t);
        free(*names);
        hs_free(*host);
    }
    return s;
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
    float *host;
    if ((s = with_tensors(m, o, 1, &t, &names, &host)))
        return s;
    hs_ckpt_meta meta = {0};
    meta.step = hs_optimizer_steps(o);
    meta.seed = st->seed;
    meta.data_position = st->data_position;
    meta.model_config = config;
    s = hs_checkpoint_save(dir, t, HS_STATE_KINDS * hs_model_num_tensors(m), &meta);
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
    float *host;
    hs_status s = with_tensors(m, o, 0, &t, &names, &host);
    if (s)
        return s;
    hs_ckpt_meta meta = {0};
    const int nt = hs_model_num_tensors(m);
    s = hs_checkpoint_load(dir, t, HS_STATE_KINDS * nt, &meta);
    const int loaded = s == HS_OK;
    for (int k = 0; host && !s && k < HS_STATE_KINDS; k++) /* an NPU's: up from the staging */
        for (int i = 0; !s && i < nt; i++)
            s = hs_state_copy(m, o, k, i, t[k * nt + i].data, 0);
    free(t);
    free(names);
    hs_free(host);
    if (loaded)
        hs_ckpt_meta_free(&meta);
    HS_TRY(s);
    st->seed = meta.seed;
    st->data_position = meta.data_position;
    HS_TRY(hs_model_sync_weights(m));
    return hs_optimizer_set_steps(o, meta.step);
}

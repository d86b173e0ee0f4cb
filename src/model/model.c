/* Model object: parameter registry, flat buffers (host memory or NPU HBM),
 * activation arena, init, the compute-dtype copy of the weights. */
#include "core/try.h"
#include "hyperspeed/kernels.h"
#include "model/model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_LEN 48

/* ------------------------------------------------------------ registry */

static int reg_add(hs_model *m, const char *name, int ndim, int64_t d0, int64_t d1)
{
    int i = m->n_tensors++;
    hs_param_info *p = &m->params[i];
    char *dst = m->names + (size_t)i * NAME_LEN;
    snprintf(dst, NAME_LEN, "%s", name);
    p->name = dst;
    p->ndim = ndim;
    p->shape[0] = d0;
    p->shape[1] = ndim > 1 ? d1 : 1;
    p->shape[2] = p->shape[3] = 1;
    p->numel = d0 * p->shape[1];
    p->offset = m->n_params;
    p->decay = ndim >= 2; /* matrices and embeddings decay; biases and norm weights do not */
    m->n_params += p->numel;
    return i;
}

static int reg_block(hs_model *m, int l, const char *what, int ndim, int64_t d0, int64_t d1)
{
    char name[NAME_LEN];
    snprintf(name, sizeof name, "h.%d.%s", l, what);
    return reg_add(m, name, ndim, d0, d1);
}

static void build_registry(hs_model *m)
{
    const hs_model_config *c = &m->cfg;
    const int64_t C = c->d_model, F = c->d_ff, V = c->vocab_size;
    const int gpt2 = c->arch == HS_ARCH_GPT2;
    m->wte = reg_add(m, "wte", 2, V, C);
    m->wpe = gpt2 ? reg_add(m, "wpe", 2, c->max_seq, C) : -1;
    for (int l = 0; l < c->n_layer; l++) {
        block_params *b = &m->blocks[l];
        b->ln1_w = reg_block(m, l, "ln1.w", 1, C, 1);
        b->ln1_b = gpt2 ? reg_block(m, l, "ln1.b", 1, C, 1) : -1;
        b->qkv_w = reg_block(m, l, "attn.qkv.w", 2, 3 * C, C);
        b->qkv_b = gpt2 ? reg_block(m, l, "attn.qkv.b", 1, 3 * C, 1) : -1;
        b->proj_w = reg_block(m, l, "attn.proj.w", 2, C, C);
        b->proj_b = gpt2 ? reg_block(m, l, "attn.proj.b", 1, C, 1) : -1;
        b->ln2_w = reg_block(m, l, "ln2.w", 1, C, 1);
        b->ln2_b = gpt2 ? reg_block(m, l, "ln2.b", 1, C, 1) : -1;
        b->fc_w = reg_block(m, l, "mlp.fc.w", 2, gpt2 ? F : 2 * F, C);
        b->fc_b = gpt2 ? reg_block(m, l, "mlp.fc.b", 1, F, 1) : -1;
        b->fc2_w = reg_block(m, l, "mlp.proj.w", 2, C, F);
        b->fc2_b = gpt2 ? reg_block(m, l, "mlp.proj.b", 1, C, 1) : -1;
    }
    m->lnf_w = reg_add(m, "lnf.w", 1, C, 1);
    m->lnf_b = gpt2 ? reg_add(m, "lnf.b", 1, C, 1) : -1;
    m->lm_head = gpt2 ? -1 : reg_add(m, "lm_head.w", 2, V, C);
}

/* ---------------------------------------------------------------- arena */

/* Hands out 64-byte-aligned slices of one allocation. With base == NULL it
 * only counts, so the same code sizes the arena and then lays it out. */
typedef struct arena_cursor {
    char *base;
    size_t used; /* bytes */
} arena_cursor;

static void *take(arena_cursor *a, size_t bytes)
{
    void *p = a->base ? a->base + a->used : NULL;
    a->used += (bytes + 63) & ~(size_t)63;
    return p;
}

static float *takef(arena_cursor *a, size_t n) { return take(a, n * sizeof(float)); }

static void plan_arena(hs_model *m, arena_cursor *a)
{
    const hs_model_config *c = &m->cfg;
    const size_t N = (size_t)m->max_B * m->max_T, C = c->d_model, F = c->d_ff, V = c->vocab_size;
    const size_t FC = c->arch == HS_ARCH_GPT2 ? F : 2 * F;
    const size_t cs = hs_dtype_size(m->compute);
    const int lp = m->compute != HS_FP32;
    /* With 16-bit compute the fp32 outputs of the norms and the MLP
     * activation are consumed at once by their casts: one scratch serves. */
    float *x32 = lp ? takef(a, N * (C > F ? C : F)) : NULL;
    m->encoded = takef(a, N * C);
    for (int l = 0; l < c->n_layer; l++) {
        block_acts *b = &m->acts[l];
        b->ln1 = lp ? x32 : takef(a, N * C);
        b->ln1_mean = takef(a, N);
        b->ln1_rstd = takef(a, N);
        b->qkv = takef(a, N * 3 * C);
        b->att = takef(a, N * C);
        b->att_lse = takef(a, N * (size_t)c->n_head);
        b->res1 = takef(a, N * C);
        b->ln2 = lp ? x32 : takef(a, N * C);
        b->ln2_mean = takef(a, N);
        b->ln2_rstd = takef(a, N);
        b->fc = takef(a, N * FC);
        b->fc_act = lp ? x32 : takef(a, N * F);
        b->res2 = takef(a, N * C);
        b->ln1_c = lp ? take(a, N * C * cs) : b->ln1;
        b->att_c = lp ? take(a, N * C * cs) : b->att;
        b->ln2_c = lp ? take(a, N * C * cs) : b->ln2;
        b->fc_act_c = lp ? take(a, N * F * cs) : b->fc_act;
    }
    m->lnf = lp ? x32 : takef(a, N * C);
    m->lnf_mean = takef(a, N);
    m->lnf_rstd = takef(a, N);
    m->lnf_c = lp ? take(a, N * C * cs) : m->lnf;
    m->logits = takef(a, N * V);
    m->losses = takef(a, N);
    m->ce_lse = takef(a, N);
    m->g.dres = takef(a, N * C);
    m->g.dln = takef(a, N * C);
    m->g.datt = takef(a, N * C);
    m->g.dqkv = takef(a, N * 3 * C);
    m->g.dfc = takef(a, N * FC);
    m->g.dfc_act = takef(a, N * F);
    m->targets = take(a, N * sizeof(int32_t));
    m->tok_dev = m->device == HS_DEVICE_NPU ? take(a, N * sizeof(int32_t)) : NULL;
}

/* ------------------------------------------------------------ lifecycle */

/* Host staging of an NPU model, in floats: an init chunk, the losses of a
 * micro-batch, or a logits row with the sampler's two top-k lists. */
#define STAGE_FLOATS ((size_t)1 << 18)

hs_model_options hs_model_options_default(void)
{
    hs_model_options o = {HS_DEVICE_CPU, NULL, HS_FP32};
    return o;
}

static hs_status check_options(const hs_model_options *o)
{
    if (o->device != HS_DEVICE_CPU && o->device != HS_DEVICE_NPU)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "unknown model device %d (HS_DEVICE_CPU or HS_DEVICE_NPU)",
                        (int)o->device);
    if (o->device == HS_DEVICE_NPU && !o->npu)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "a model on HS_DEVICE_NPU needs the device: options.npu is NULL");
    if (o->compute != HS_FP32 && o->compute != HS_BF16 && o->compute != HS_FP16)
        return hs_error(HS_ERR_DTYPE, "compute dtype %s: models compute in fp32, bf16 or fp16",
                        hs_dtype_name(o->compute));
    if (o->device == HS_DEVICE_NPU && o->compute == HS_FP32)
        return hs_error(HS_ERR_DTYPE, "compute dtype fp32 on the NPU: the cube takes fp16/bf16: use --dtype bf16 "
                        "(hs_model_options.compute = HS_BF16)");
    if (o->device == HS_DEVICE_CPU && o->compute == HS_FP16)
        return hs_error(HS_ERR_DTYPE, "compute dtype fp16 on the CPU: its matmul takes fp32 or bf16");
    return HS_OK;
}

/* bytes of the model's device memory (host memory on the CPU, HBM on the
 * NPU) for `what`; the error names it and the planned shape. */
static hs_status alloc_on_device(hs_model *m, const char *what, size_t bytes, void **out)
{
    hs_status s = HS_OK;
    if (m->npu) {
        s = hs_npu_malloc(m->npu, bytes, out);
    } else {
        *out = hs_alloc(bytes);
        s = *out ? HS_OK : HS_ERR_OUT_OF_MEMORY;
    }
    if (!s)
        return HS_OK;
    char why[512];
    snprintf(why, sizeof why, "%s", hs_last_error());
    return hs_error(s, "model %s: %.1f MiB for batch=%d seq=%d do not fit: %s", what, (double)bytes / 1048576.0,
                    m->max_B, m->max_T, why);
}

static void free_on_device(hs_model *m, void *p)
{
    if (m->npu)
        (void)hs_npu_free_mem(m->npu, p); /* an address this model allocated: cannot fail */
    else
        hs_free(p);
}

/* Allocates the flat buffers, the compute-dtype weights, the arena and
 * (NPU) the host staging, and lays the arena out. */
static hs_status allocate(hs_model *m)
{
    arena_cursor count = {NULL, 0};
    plan_arena(m, &count);
    const size_t pbytes = (size_t)m->n_params * sizeof(float);
    void *p;
    HS_TRY(alloc_on_device(m, "parameters", pbytes, &p));
    m->param_buf = p;
    HS_TRY(alloc_on_device(m, "gradients", pbytes, &p));
    m->grad_buf = p;
    m->param_c = m->param_buf;
    if (m->compute != HS_FP32) {
        HS_TRY(alloc_on_device(m, "compute-dtype weights", (size_t)m->n_params * hs_dtype_size(m->compute), &p));
        m->param_c = p;
    }
    HS_TRY(alloc_on_device(m, "activations", count.used, &m->arena));
    if (m->npu) {
        const size_t N = (size_t)m->max_B * m->max_T, V3 = 3 * (size_t)m->cfg.vocab_size;
        m->stage_n = STAGE_FLOATS > N ? STAGE_FLOATS : N;
        m->stage_n = m->stage_n > V3 ? m->stage_n : V3;
        m->stage = hs_alloc(m->stage_n * sizeof(float));
        if (!m->stage)
            return hs_error(HS_ERR_OUT_OF_MEMORY, "model: %zu floats of host staging", m->stage_n);
    }
    if (!m->npu) { /* touch the host pages now, not in the first step */
        memset(m->param_buf, 0, pbytes);
        memset(m->arena, 0, count.used);
    }
    arena_cursor lay = {m->arena, 0};
    plan_arena(m, &lay);
    return HS_OK;
}

hs_status hs_model_new(const hs_model_config *cfg, int batch, int seq, hs_model **out)
{
    return hs_model_new_ex(cfg, batch, seq, NULL, out);
}

/* The checked options and a model with its registry but no buffers (free
 * with hs_model_free). */
static hs_status skeleton(const hs_model_config *cfg, int batch, int seq, const hs_model_options *opts,
                          hs_model **out)
{
    const hs_model_options o = opts ? *opts : hs_model_options_default();
    HS_TRY(hs_model_config_validate(cfg));
    HS_TRY(check_options(&o));
    if (batch < 1 || seq < 1)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "batch=%d and seq=%d must be positive", batch, seq);
    if (seq > cfg->max_seq)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "seq=%d is longer than the model's context max_seq=%d", seq,
                        cfg->max_seq);
    hs_model *m = calloc(1, sizeof *m);
    if (!m)
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_model_new: out of host memory");
    m->cfg = *cfg;
    m->max_B = batch;
    m->max_T = seq;
    m->device = o.device;
    m->npu = o.device == HS_DEVICE_NPU ? o.npu : NULL;
    m->compute = o.compute;
    int max_tensors = 6 + 12 * cfg->n_layer;
    m->params = calloc((size_t)max_tensors, sizeof *m->params);
    m->names = calloc((size_t)max_tensors, NAME_LEN);
    m->blocks = calloc((size_t)cfg->n_layer, sizeof *m->blocks);
    m->acts = calloc((size_t)cfg->n_layer, sizeof *m->acts);
    if (!m->params || !m->names || !m->blocks || !m->acts) {
        hs_model_free(m);
        return hs_error(HS_ERR_OUT_OF_MEMORY, "hs_model_new: out of host memory");
    }
    build_registry(m);
    *out = m;
    return HS_OK;
}

hs_status hs_model_new_ex(const hs_model_config *cfg, int batch, int seq, const hs_model_options *opts,
                          hs_model **out)
{
    if (!out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_new: out is NULL");
    *out = NULL;
    hs_model *m;
    HS_TRY(skeleton(cfg, batch, seq, opts, &m));
    hs_status s = allocate(m);
    if (!s)
        s = hs_model_zero_grad(m);
    if (s) {
        hs_model_free(m);
        return s;
    }
    *out = m;
    return HS_OK;
}

hs_status hs_model_memory_plan(const hs_model_config *cfg, int batch, int seq, const hs_model_options *opts,
                               hs_model_memory *out)
{
    if (!out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_memory_plan: out is NULL");
    hs_model *m;
    HS_TRY(skeleton(cfg, batch, seq, opts, &m));
    arena_cursor count = {NULL, 0};
    plan_arena(m, &count);
    const size_t n = (size_t)m->n_params, N = (size_t)batch * seq, cs = hs_dtype_size(m->compute);
    const size_t head_cast = N * (size_t)cfg->vocab_size * cs, attention = 8 * N * (size_t)cfg->d_model;
    out->params = m->n_params;
    out->weights = n * sizeof(float) + (m->compute != HS_FP32 ? n * cs : 0);
    out->gradients = n * sizeof(float);
    out->optimizer = 2 * n * sizeof(float);
    out->activations = count.used;
    out->workspace = m->device == HS_DEVICE_NPU ? (head_cast > attention ? head_cast : attention) : 0;
    hs_model_free(m);
    return HS_OK;
}

void hs_model_free(hs_model *m)
{
    if (!m)
        return;
    hs_free(m->stage);
    free_on_device(m, m->arena);
    if (m->param_c != m->param_buf)
        free_on_device(m, m->param_c);
    free_on_device(m, m->grad_buf);
    free_on_device(m, m->param_buf);
    free(m->acts);
    free(m->blocks);
    free(m->names);
    free(m->params);
    free(m);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* dev[0..n) of an NPU model = elements [0, n) of N(0, std^2) tensor `id`:
 * generated on the host a staging chunk at a time and copied. Estimate
 * mode generates nothing but takes the same copies' time. */
static hs_status upload_normal(hs_model *m, float *dev, int64_t n, uint64_t seed, uint64_t id, float std)
{
    const int values = hs_npu_mode_of(m->npu) == HS_NPU_EXECUTE;
    for (int64_t first = 0; first < n; first += (int64_t)m->stage_n) {
        const size_t len = (size_t)(n - first) < m->stage_n ? (size_t)(n - first) : m->stage_n;
        if (values)
            hs_rng_normal(m->stage, len, seed, id, (uint64_t)first, 0.0f, std);
        HS_TRY(hs_npu_memcpy_h2d(m->npu, hs_npu_current_stream(), dev + first, values ? m->stage : NULL,
                                 len * sizeof(float)));
    }
    return HS_OK;
}

hs_status hs_model_init(hs_model *m, uint64_t seed)
{
    if (!m)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_init: model is NULL");
    hs_model_use_device(m);
    const float resid_std = m->cfg.init_std / sqrtf(2.0f * (float)m->cfg.n_layer);
    for (int i = 0; i < m->n_tensors; i++) {
        const hs_param_info *p = &m->params[i];
        float *w = m->param_buf + p->offset;
        if (p->ndim >= 2) {
            float std = ends_with(p->name, ".proj.w") ? resid_std : m->cfg.init_std;
            if (m->npu)
                HS_TRY(upload_normal(m, w, p->numel, seed, (uint64_t)i, std));
            else
                hs_rng_normal(w, (size_t)p->numel, seed, (uint64_t)i, 0, 0.0f, std);
        } else {
            float v = (ends_with(p->name, "ln1.w") || ends_with(p->name, "ln2.w") || ends_with(p->name, "lnf.w"))
                          ? 1.0f : 0.0f;
            hs_tensor t = hs_model_on_device(m, hs_view1(w, HS_FP32, p->numel));
            HS_TRY(hs_fill(&t, v));
        }
    }
    return hs_model_sync_weights(m);
}

hs_status hs_model_sync_weights(hs_model *m)
{
    if (!m)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_sync_weights: model is NULL");
    if (m->compute == HS_FP32)
        return HS_OK;
    hs_model_use_device(m);
    hs_tensor src = hs_model_on_device(m, hs_view1(m->param_buf, HS_FP32, m->n_params));
    hs_tensor dst = hs_model_on_device(m, hs_view1(m->param_c, m->compute, m->n_params));
    return hs_cast(&dst, &src);
}

/* ------------------------------------------------------------ accessors */

const hs_model_config *hs_model_config_of(const hs_model *m) { return &m->cfg; }

int64_t hs_model_num_params(const hs_model *m) { return m->n_params; }

int hs_model_num_tensors(const hs_model *m) { return m->n_tensors; }

const hs_param_info *hs_model_param(const hs_model *m, int i)
{
    return (i >= 0 && i < m->n_tensors) ? &m->params[i] : NULL;
}

const hs_param_info *hs_model_param_by_name(const hs_model *m, const char *name)
{
    for (int i = 0; name && i < m->n_tensors; i++)
        if (strcmp(m->params[i].name, name) == 0)
            return &m->params[i];
    return NULL;
}

float *hs_model_params(hs_model *m) { return m->param_buf; }

float *hs_model_grads(hs_model *m) { return m->grad_buf; }

hs_device_kind hs_model_device(const hs_model *m) { return m->device; }

hs_npu *hs_model_npu(const hs_model *m) { return m->npu; }

hs_dtype hs_model_compute_dtype(const hs_model *m) { return m->compute; }

void hs_model_set_grad_hook(hs_model *m, hs_grad_ready_fn fn, void *ctx)
{
    m->grad_hook = fn;
    m->grad_hook_ctx = fn ? ctx : NULL;
}

void hs_model_defer_embedding_grad(hs_model *m, int defer) { m->defer_embedding = defer != 0; }

void hs_model_planned_shape(const hs_model *m, int *batch, int *seq)
{
    if (batch)
        *batch = m->max_B;
    if (seq)
        *seq = m->max_T;
}

hs_status hs_model_zero_grad(hs_model *m)
{
    if (!m)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_zero_grad: model is NULL");
    hs_model_use_device(m);
    hs_tensor g = hs_model_on_device(m, hs_view1(m->grad_buf, HS_FP32, m->n_params));
    return hs_fill(&g, 0.0f);
}

double hs_model_flops_per_step(const hs_model *m, int B, int T)
{
    const hs_model_config *c = &m->cfg;
    const double C = c->d_model, F = c->d_ff, V = c->vocab_size, L = c->n_layer;
    const double fc_out = c->arch == HS_ARCH_GPT2 ? F : 2 * F;
    double matmul_params = L * (3 * C * C + C * C + fc_out * C + F * C) + V * C;
    double tokens = (double)B * T;
    return 6.0 * matmul_params * tokens + 6.0 * L * (double)B * T * T * C;
}

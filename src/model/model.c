/* Model object: parameter registry, flat buffers, activation arena, init. */
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
    float *base;
    size_t used; /* floats */
} arena_cursor;

static float *take(arena_cursor *a, size_t n)
{
    float *p = a->base ? a->base + a->used : NULL;
    a->used += (n + 15) & ~(size_t)15;
    return p;
}

static void plan_arena(hs_model *m, arena_cursor *a)
{
    const hs_model_config *c = &m->cfg;
    const size_t N = (size_t)m->max_B * m->max_T, C = c->d_model, F = c->d_ff, V = c->vocab_size;
    const size_t FC = c->arch == HS_ARCH_GPT2 ? F : 2 * F;
    m->encoded = take(a, N * C);
    for (int l = 0; l < c->n_layer; l++) {
        block_acts *b = &m->acts[l];
        b->ln1 = take(a, N * C);
        b->ln1_mean = take(a, N);
        b->ln1_rstd = take(a, N);
        b->qkv = take(a, N * 3 * C);
        b->att = take(a, N * C);
        b->att_lse = take(a, N * (size_t)c->n_head);
        b->res1 = take(a, N * C);
        b->ln2 = take(a, N * C);
        b->ln2_mean = take(a, N);
        b->ln2_rstd = take(a, N);
        b->fc = take(a, N * FC);
        b->fc_act = take(a, N * F);
        b->res2 = take(a, N * C);
    }
    m->lnf = take(a, N * C);
    m->lnf_mean = take(a, N);
    m->lnf_rstd = take(a, N);
    m->logits = take(a, N * V);
    m->losses = take(a, N);
    m->ce_lse = take(a, N);
    m->g.dres = take(a, N * C);
    m->g.dln = take(a, N * C);
    m->g.datt = take(a, N * C);
    m->g.dqkv = take(a, N * 3 * C);
    m->g.dfc = take(a, N * FC);
    m->g.dfc_act = take(a, N * F);
    m->targets = (int32_t *)take(a, N); /* int32 and float have the same size */
}

/* ------------------------------------------------------------ lifecycle */

hs_status hs_model_new(const hs_model_config *cfg, int batch, int seq, hs_model **out)
{
    if (!out)
        return hs_error(HS_ERR_INVALID_ARGUMENT, "hs_model_new: out is NULL");
    *out = NULL;
    hs_status s = hs_model_config_validate(cfg);
    if (s)
        return s;
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

    arena_cursor count = {NULL, 0};
    plan_arena(m, &count);
    size_t pbytes = (size_t)m->n_params * sizeof(float);
    m->param_buf = hs_alloc(pbytes);
    m->grad_buf = hs_alloc(pbytes);
    m->arena = hs_alloc(count.used * sizeof(float));
    if (!m->param_buf || !m->grad_buf || !m->arena) {
        hs_model_free(m);
        return hs_error(HS_ERR_OUT_OF_MEMORY, "model needs %.1f MiB of parameters and gradients and %.1f MiB of "
                        "activations for batch=%d seq=%d; host allocation failed",
                        2.0 * (double)pbytes / 1048576.0, (double)count.used * 4.0 / 1048576.0, batch, seq);
    }
    memset(m->param_buf, 0, pbytes);
    memset(m->grad_buf, 0, pbytes);
    memset(m->arena, 0, count.used * sizeof(float)); /* touch the pages now, not in the first step */
    arena_cursor lay = {m->arena, 0};
    plan_arena(m, &lay);
    *out = m;
    return HS_OK;
}

void hs_model_free(hs_model *m)
{
    if (!m)
        return;
    hs_free(m->arena);
    hs_free(m->grad_buf);
    hs_free(m->param_buf);
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

void hs_model_init(hs_model *m, uint64_t seed)
{
    const float resid_std = m->cfg.init_std / sqrtf(2.0f * (float)m->cfg.n_layer);
    for (int i = 0; i < m->n_tensors; i++) {
        const hs_param_info *p = &m->params[i];
        float *w = m->param_buf + p->offset;
        if (p->ndim >= 2) {
            float std = ends_with(p->name, ".proj.w") ? resid_std : m->cfg.init_std;
            hs_rng_normal(w, (size_t)p->numel, seed, (uint64_t)i, 0, 0.0f, std);
        } else {
            float v = (ends_with(p->name, "ln1.w") || ends_with(p->name, "ln2.w") || ends_with(p->name, "lnf.w"))
                          ? 1.0f : 0.0f;
            for (int64_t j = 0; j < p->numel; j++)
                w[j] = v;
        }
    }
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

void hs_model_zero_grad(hs_model *m) { memset(m->grad_buf, 0, (size_t)m->n_params * sizeof(float)); }

double hs_model_flops_per_step(const hs_model *m, int B, int T)
{
    const hs_model_config *c = &m->cfg;
    const double C = c->d_model, F = c->d_ff, V = c->vocab_size, L = c->n_layer;
    const double fc_out = c->arch == HS_ARCH_GPT2 ? F : 2 * F;
    double matmul_params = L * (3 * C * C + C * C + fc_out * C + F * C) + V * C;
    double tokens = (double)B * T;
    return 6.0 * matmul_params * tokens + 6.0 * L * (double)B * T * T * C;
}

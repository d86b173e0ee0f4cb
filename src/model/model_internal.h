/* The model object shared by the registry (model.c) and the forward and
 * backward passes (transformer.c). */
#ifndef HS_MODEL_INTERNAL_H
#define HS_MODEL_INTERNAL_H

#include "hyperspeed/model.h"

/* Registry indices of one block's parameters; -1 where the architecture
 * has no such tensor (LLaMA has no biases). */
typedef struct block_params {
    int ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b;
    int ln2_w, ln2_b, fc_w, fc_b, fc2_w, fc2_b;
} block_params;

/* Activations of one block for one micro-batch, N = B*T rows. */
typedef struct block_acts {
    float *ln1, *ln1_mean, *ln1_rstd; /* [N,C], [N], [N] (mean unused by RMSNorm) */
    float *qkv;                       /* [N,3C]; after RoPE for LLaMA */
    float *att, *att_lse;             /* [N,C], [B,NH,T] */
    float *res1;                      /* [N,C] block input + attention branch */
    float *ln2, *ln2_mean, *ln2_rstd; /* [N,C], [N], [N] */
    float *fc;                        /* [N,F] (GPT-2, before bias) or [N,2F] gate|up (LLaMA) */
    float *fc_act;                    /* [N,F] GELU or SwiGLU output */
    float *res2;                      /* [N,C] block output */
} block_acts;

/* Gradient scratch reused by every block during the backward. */
typedef struct grad_scratch {
    float *dres;    /* [N,C] gradient of the residual stream */
    float *dln;     /* [N,C] gradient of a norm's output */
    float *datt;    /* [N,C] */
    float *dqkv;    /* [N,3C] */
    float *dfc;     /* [N,F] or [N,2F] */
    float *dfc_act; /* [N,F] */
} grad_scratch;

struct hs_model {
    hs_model_config cfg;
    int max_B, max_T; /* planned micro-batch shape */

    /* registry */
    hs_param_info *params;
    int n_tensors;
    char *names; /* storage for the params' names */
    int64_t n_params;
    float *param_buf, *grad_buf;
    int wte, wpe, lnf_w, lnf_b, lm_head; /* -1 where absent; lm_head -1 when tied */
    block_params *blocks;

    /* activation arena */
    float *arena;
    float *encoded;                     /* [N,C] */
    block_acts *acts;                   /* one per layer */
    float *lnf, *lnf_mean, *lnf_rstd;   /* [N,C], [N], [N] */
    float *logits;                      /* [N,V]; becomes dlogits in the backward */
    float *losses, *ce_lse;             /* [N], [N] */
    grad_scratch g;

    /* the last forward */
    int B, T;
    const int32_t *tokens; /* borrowed from the caller until the backward */
    int32_t *targets;      /* copied: [N] */
    int have_targets;
    int logits_are_grads;
    int n_valid;
};

/* Pointer to a registry entry's values or gradients; NULL when idx < 0. */
static inline float *hs_model_pptr(const struct hs_model *m, int idx)
{
    return idx < 0 ? (float *)0 : m->param_buf + m->params[idx].offset;
}
static inline float *hs_model_gptr(const struct hs_model *m, int idx)
{
    return idx < 0 ? (float *)0 : m->grad_buf + m->params[idx].offset;
}

#endif

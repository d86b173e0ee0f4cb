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

/* Activations of one block for one micro-batch, N = B*T rows. The *_c
 * pointers are the matmul inputs in the compute dtype: the fp32 buffer
 * itself for fp32 compute, else a 16-bit twin that the backward's matmuls
 * read, while the fp32 ln1, ln2 and fc_act then share one scratch (only
 * their twins are needed later). */
typedef struct block_acts {
    float *ln1, *ln1_mean, *ln1_rstd; /* [N,C], [N], [N] (mean unused by RMSNorm) */
    float *qkv;                       /* [N,3C]; after RoPE for LLaMA */
    float *att, *att_lse;             /* [N,C], [B,NH,T] */
    float *res1;                      /* [N,C] block input + attention branch */
    float *ln2, *ln2_mean, *ln2_rstd; /* [N,C], [N], [N] */
    float *fc;                        /* [N,F] (GPT-2, before bias) or [N,2F] gate|up (LLaMA) */
    float *fc_act;                    /* [N,F] GELU or SwiGLU output */
    float *res2;                      /* [N,C] block output */
    void *ln1_c, *att_c, *ln2_c, *fc_act_c;
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
    hs_device_kind device;
    hs_npu *npu;      /* NULL on the CPU */
    hs_dtype compute; /* dtype of the matmul inputs */

    /* registry */
    hs_param_info *params;
    int n_tensors;
    char *names; /* storage for the params' names */
    int64_t n_params;
    float *param_buf, *grad_buf;
    void *param_c; /* the parameters in the compute dtype; param_buf itself for fp32 */
    int wte, wpe, lnf_w, lnf_b, lm_head; /* -1 where absent; lm_head -1 when tied */
    block_params *blocks;

    /* activation arena */
    void *arena;
    float *encoded;                     /* [N,C] */
    block_acts *acts;                   /* one per layer */
    float *lnf, *lnf_mean, *lnf_rstd;   /* [N,C], [N], [N] */
    void *lnf_c;                        /* lnf in the compute dtype (lnf itself for fp32) */
    float *logits;                      /* [N,V]; becomes dlogits in the backward */
    float *losses, *ce_lse;             /* [N], [N] */
    grad_scratch g;
    int32_t *tok_dev;                   /* NPU: the device copy of the tokens [N]; NULL on the CPU */

    /* NPU: host staging for init chunks, read-back losses and logits rows */
    float *stage;
    size_t stage_n; /* floats */

    /* hs_model_set_grad_hook: told as the backward finalises gradients */
    hs_grad_ready_fn grad_hook;
    void *grad_hook_ctx;
    int64_t ready_end;   /* during a backward: gradients from here to the end were reported */
    int defer_embedding; /* hs_model_defer_embedding_grad */
    int embedding_deferred; /* the last backward left its embedding gradient out */

    /* the last forward */
    int B, T;
    const int32_t *tokens; /* on the CPU borrowed from the caller until the backward; on the NPU tok_dev */
    int32_t *targets;      /* copied: [N], on the model's device */
    int have_targets;
    int logits_are_grads;
    int n_valid;
};

/* Makes the model's NPU the thread's current device unless it is already
 * (a caller's choice of stream on it is kept); nothing on the CPU. */
static inline void hs_model_use_device(const struct hs_model *m)
{
    if (m->npu && hs_npu_current() != m->npu)
        hs_npu_set_current(m->npu, NULL);
}

/* The view t, placed on the model's device. */
static inline hs_tensor hs_model_on_device(const struct hs_model *m, hs_tensor t)
{
    t.device = m->device;
    return t;
}

#endif

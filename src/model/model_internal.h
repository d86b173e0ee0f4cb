/* The model object shared by the registry (model.c), the forward and
 * backward passes (transformer.c) and generation (generate.c). */
#ifndef HS_MODEL_INTERNAL_H
#define HS_MODEL_INTERNAL_H

#include "hyperspeed/model.h"
#include "memory/registry.h"

/* Registry indices of one block's parameters; -1 where the architecture
 * has no such tensor (LLaMA has no biases). */
typedef struct block_params {
    int ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b;
    int ln2_w, ln2_b, fc_w, fc_b, fc2_w, fc2_b;
} block_params;

/* Activations of one block for one micro-batch. N = B*T rows of the whole
 * sequence, Ns = N / tp of a sequence slice under sequence parallelism
 * (else N); Cl = C / tp, Fl = F / tp, NHl = NH / tp the rank's share of
 * the attention width, the MLP width and the heads under tensor
 * parallelism (the whole for tp = 1). The *_c pointers are the matmul
 * inputs in the compute dtype: the fp32 buffer itself for fp32 compute
 * without sequence parallelism, else their own buffer (a 16-bit twin, or
 * the rows of the whole sequence gathered from the slices), while the fp32
 * ln1, ln2 and fc_act then share one scratch (only the *_c are needed
 * later). */
typedef struct block_acts {
    float *ln1, *ln1_mean, *ln1_rstd; /* [Ns,C], [Ns], [Ns] (mean unused by RMSNorm) */
    float *qkv;                       /* [N,QKVl] = [q | k | v] of the rank's heads; after RoPE for LLaMA */
    float *att, *att_lse;             /* [N,Cl], [B,NHl,T] */
    float *res1;                      /* [Ns,C] block input + attention branch */
    float *ln2, *ln2_mean, *ln2_rstd; /* [Ns,C], [Ns], [Ns] */
    float *fc;                        /* [N,Fl] (GPT-2, before bias) or [N,2Fl] gate|up (LLaMA) */
    float *fc_act;                    /* [N,Fl] GELU or SwiGLU output */
    float *res2;                      /* [Ns,C] block output */
    void *ln1_c, *att_c, *ln2_c, *fc_act_c; /* [N,C], [N,Cl], [N,C], [N,Fl] */
} block_acts;

/* One micro-batch's activations and what its forward left for the
 * backward: a pipeline stage keeps several micro-batches in flight, each
 * in its own set (hs_model_set_slot). */
typedef struct act_set {
    float *encoded;                   /* [Ns,C] the chunk's input: the embedding's output, or the previous stage's */
    block_acts *acts;                 /* one per layer of the chunk */
    float *lnf, *lnf_mean, *lnf_rstd; /* [Ns,C], [Ns], [Ns] */
    void *lnf_c;                      /* [N,C] lnf in the compute dtype (whole sequences) */
    float *logits;                    /* [N,Vh] (Vh: the head's vocabulary columns); becomes dlogits */
    float *losses, *ce_lse;           /* [N], [N] (tp > 1: lse of the whole vocabulary, combined) */
    int32_t *targets;                 /* [N] copied, on the model's device */
    int32_t *tok_dev;                 /* NPU: the device copy of the tokens [N]; NULL on the CPU */

    int B, T;              /* the micro-batch of the last forward into this set (0: none) */
    const int32_t *tokens; /* CPU: borrowed from the caller until the backward; NPU: tok_dev */
    int have_targets;
    int logits_are_grads;
    int n_valid;
    int embedding_deferred; /* the last backward left its embedding gradient out */
} act_set;

/* Gradient scratch reused by every block during the backward. */
typedef struct grad_scratch {
    float *dres;    /* [Ns,C] gradient of the residual stream; dL/d(chunk input) after the backward */
    float *dln;     /* [Ns,C] gradient of a norm's output */
    float *dfull;   /* [N,C] tp > 1: the whole sequences' gradient (gathered, or a partial sum) */
    float *datt;    /* [N,Cl] */
    float *dqkv;    /* [N,QKVl] */
    float *dfc;     /* [N,Fl] or [N,2Fl] */
    float *dfc_act; /* [N,Fl] */
} grad_scratch;

struct hs_model {
    hs_model_config cfg; /* the whole model's */
    int max_B, max_T;    /* planned micro-batch shape */
    hs_device_kind device;
    hs_npu *npu;      /* NULL on the CPU */
    hs_device *dev;   /* where its tensors live and its kernels run: NULL (the CPU) or the NPU's default stream */
    hs_dtype compute; /* dtype of the matmul inputs */

    /* the shard: tensor-parallel rank, the chunk of layers */
    hs_model_shard shard;
    int first_layer, n_layer; /* the chunk's layers [first_layer, first_layer + n_layer) */
    int has_embedding, has_head;
    int tp, tp_rank, sp;     /* shard.tp, shard.tp_rank, shard.sequence_parallel */
    int64_t vocab_rows;      /* rows of wte (and lm_head) held: padded_vocab / tp */
    int64_t vocab_start;     /* the first vocabulary id of the shard */
    int64_t head_vocab;      /* Vh: real (not padding) ids of the shard, the head's logits columns */

    hs_registry reg; /* the parameters: descriptors, values, gradients, compute copy */
    int wte, wpe, lnf_w, lnf_b, lm_head; /* -1 where absent; lm_head -1 when tied */
    block_params *blocks;                /* one per layer of the chunk */

    /* activation arena: n_slots sets, then the scratch they share */
    void *arena;
    act_set *sets;
    int n_slots;
    act_set *cur;    /* the set hs_model_set_slot chose */
    float *x32;      /* fp32 norm / activation outputs consumed at once by a cast or gather */
    float *full;     /* tp > 1: [N,C] a row-parallel layer's partial sum, or gathered rows */
    float *sp_tmp;   /* sequence parallelism: [N,C] the gather's and reduce-scatter's block scratch */
    float *ce_comb;  /* tp > 1: [2N] the cross-entropy's combination */
    grad_scratch g;

    /* NPU: host staging for init chunks, read-back losses and logits rows */
    float *stage;
    size_t stage_n; /* floats */

    /* hs_model_set_grad_hook: told as the backward finalises gradients */
    hs_grad_ready_fn grad_hook;
    void *grad_hook_ctx;
    int64_t ready_end;   /* during a backward: gradients from here to the end were reported */
    int defer_embedding; /* hs_model_defer_embedding_grad */
};

/* The view t, placed on the model's device. */
static inline hs_tensor hs_model_on_device(const struct hs_model *m, hs_tensor t)
{
    t.device = m->dev;
    return t;
}

/* Rows of the residual stream a rank holds: N, or N / tp under sequence
 * parallelism. */
static inline int64_t hs_model_stream_rows(const struct hs_model *m, int64_t N) { return m->sp ? N / m->tp : N; }

#endif

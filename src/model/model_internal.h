/* The model object shared by the registry (model.c), the forward and
 * backward passes (transformer.c) and generation (generate.c). */
#ifndef HS_MODEL_INTERNAL_H
#define HS_MODEL_INTERNAL_H

#include "hyperspeed/model.h"
#include "memory/registry.h"
#include "parallel/tp_region.h"
#include "model/model_stage.h"

/* A transformer layer is a list of sublayers, each a pre-norm residual
 * branch y = x + f(norm(x)) whose f runs through an input projection
 * (column-parallel under tensor parallelism), a core and an output
 * projection (row-parallel): attention (core: RoPE and flash attention)
 * or a dense MLP (core: GELU or SwiGLU). A kind of sublayer is a
 * descriptor (src/model/sublayer.h) with its parameters, its activations
 * and explicit forward and backward functions; a new kind (MoE) is a new
 * descriptor, not an edit of a fixed struct. */
#define HS_LAYER_SUBLAYERS 2

/* Registry indices of one sublayer's parameters; -1 where the model has
 * no such tensor (LLaMA has no biases but, with qkv_bias, qkv's). */
typedef struct sublayer_params {
    int norm_w, norm_b, in_w, in_b, out_w, out_b;
} sublayer_params;

/* Activations of one sublayer for one micro-batch. N = B*T rows of the
 * whole sequences, Ns = N / tp of a sequence slice under sequence
 * parallelism (else N); widths per rank (Cl = C / tp, Fl = F / tp,
 * NHl = NH / tp, QKVl = Cl + 2 KV / tp). ln_c and core_c are the matmul
 * inputs in the compute dtype: the fp32 buffer itself for fp32 compute
 * without sequence parallelism, else their own buffer (a 16-bit twin, or
 * the rows of the whole sequences gathered from the slices), while the
 * fp32 ln (and an MLP's core) then share one scratch (only the *_c are
 * needed later). */
typedef struct sublayer_acts {
    float *ln, *ln_mean, *ln_rstd; /* [Ns,C], [Ns], [Ns] (mean unused by RMSNorm) */
    float *in;                     /* attention: qkv [N,QKVl] after RoPE; MLP: fc [N,Fl] or gate|up [N,2Fl] */
    float *core;                   /* attention output [N,Cl]; MLP: GELU / SwiGLU output [N,Fl] */
    float *lse;                    /* attention: [B,NHl,T]; NULL for an MLP */
    float *res;                    /* [Ns,C] the sublayer's output: its input + the branch */
    void *ln_c, *core_c;           /* [N,C], [N,core width] */
} sublayer_acts;

struct sublayer_kind;

/* One sublayer of one layer: its kind and its parameters. */
typedef struct sublayer {
    const struct sublayer_kind *kind;
    sublayer_params p;
} sublayer;

/* One layer of the chunk: its sublayers in order. */
typedef struct layer {
    sublayer sub[HS_LAYER_SUBLAYERS];
    int n_sub;
} layer;

/* One layer's activations. */
typedef struct layer_acts {
    sublayer_acts sub[HS_LAYER_SUBLAYERS];
} layer_acts;

/* One micro-batch's activations and what its forward left for the
 * backward: a pipeline stage keeps several micro-batches in flight, each
 * in its own set (hs_model_set_slot). */
/* Activation offload (hs_offload ACTIVATIONS): a set's layers take HS_ACT_RING
 * device regions in turn (layer l the region l % HS_ACT_RING); each
 * layer's region goes to the host pool after its forward and comes back
 * before its backward needs it (act_offload.c). */
#define HS_ACT_RING 3
typedef struct act_ring {
    size_t at[HS_ACT_RING];        /* the regions' offsets in the arena */
    int resident[HS_ACT_RING];     /* the layer whose activations each region holds (-1: none) */
    char *host;                    /* the pool's n_layer regions (NULL when it only counts) */
    int counted;                   /* the pool holds (or counts) them */
    hs_npu_event *out[HS_ACT_RING]; /* NPU: a region's copy to the host done */
    hs_npu_event *in[HS_ACT_RING];  /* NPU: a region's copy back done */
} act_ring;

typedef struct act_set {
    float *encoded;                   /* [Ns,C] the chunk's input: the embedding's output, or the previous stage's */
    layer_acts *acts;                 /* one per layer of the chunk */
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
    float *embedding_rows;  /* ... whose rows, dL/d(embedding output) [N,C], are here (g.dres or tpr.dfull) */
    act_ring ring;          /* activation offload */
} act_set;

/* Gradient scratch reused by every block during the backward. */
typedef struct grad_scratch {
    float *dres;    /* [Ns,C] gradient of the residual stream; dL/d(chunk input) after the backward */
    float *dln;     /* [Ns,C] gradient of a norm's output */
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
    layer *layers;                       /* one per layer of the chunk */

    /* activation arena: n_slots sets, then the scratch they share */
    hs_recompute recompute;
    int recompute_layers; /* the chunk's first recompute_layers layers rebuild what they do not keep */
    unsigned offload;     /* hs_offload bits (HS_OFFLOAD_OPTIMIZER: the fp32 master in the host pool) */
    int act_offload;      /* activations offloaded: the sets' layers share HS_ACT_RING regions */
    size_t layer_bytes;   /* ... one layer's region */
    hs_npu_stream *act_copy; /* NPU: the activation copies' stream */
    hs_npu_event *act_ready; /* ... recorded on the compute stream before a copy */
    layer_acts rc;        /* what they do not keep, shared by them and every set (the recompute scratch) */
    void *arena;
    act_set *sets;
    int n_slots;
    act_set *cur;    /* the set hs_model_set_slot chose */
    float *x32;      /* fp32 norm / activation outputs consumed at once by a cast or gather */
    hs_tp_region tpr; /* the TP regions (src/parallel/tp_region.h) with their [N,C] scratch */
    float *ce_comb;  /* tp > 1: [2N] the cross-entropy's combination */
    grad_scratch g;

    /* NPU: host staging for init chunks, read-back losses and logits rows */
    float *stage;
    size_t stage_n; /* floats */

    /* hs_model_add_hook: called around every block's forward and backward */
    struct model_hook {
        hs_layer_hook_fn fn;
        void *ctx;
    } *hooks;
    int n_hooks;
    int64_t ready_end;   /* during a backward: gradients from here to the end are final */
    int defer_embedding; /* hs_model_defer_embedding_grad */
};

/* The view t, placed on the model's device. */
static inline hs_tensor hs_model_on_device(const struct hs_model *m, hs_tensor t)
{
    t.device = m->dev;
    return t;
}

/* How layer l of the chunk keeps its activations. */
static inline hs_recompute hs_model_layer_recompute(const struct hs_model *m, int l)
{
    return l < m->recompute_layers ? m->recompute : HS_RECOMPUTE_NONE;
}

/* Rows of the residual stream a rank holds: N, or N / tp under sequence
 * parallelism. */
static inline int64_t hs_model_stream_rows(const struct hs_model *m, int64_t N) { return m->sp ? N / m->tp : N; }

#endif
